"""Live: real zombies and threads, counted by the Sampler and by psutil, and by the kernel.

The population is this test's own subtree: a parent that forks children and never waits for
them, and a process whose threads block on an event. Comparing only that subtree keeps the
test exact while the rest of the machine starts and stops processes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from dynostat import procfs
from dynostat.fallback import FallbackSampler
from dynostat.sample import Culprit
from dynostat.sampler import Sampler
from support.processes import stop

ZOMBIES = 5
EXTRA_THREADS = 6
PIDS_V1 = Path("/sys/fs/cgroup/pids")

# Each program first joins the pids cgroup given as its argument, if any, so that its forks
# and threads are counted there.
JOIN_CGROUP = """
import sys
if len(sys.argv) > 1:
    with open(sys.argv[1] + "/cgroup.procs", "w") as procs:
        procs.write("0")
"""

ZOMBIE_MAKER = (
    JOIN_CGROUP
    + f"""
import os, signal, time

def reap_and_exit(signum, frame):
    # The test's cleanup: reap the zombies here rather than leave them to pid 1.
    while True:
        try:
            os.wait()
        except ChildProcessError:
            os._exit(0)

signal.signal(signal.SIGTERM, reap_and_exit)
for _ in range({ZOMBIES}):
    if os.fork() == 0:
        os._exit(0)
print("ready", flush=True)
time.sleep(120)  # never waits: every child stays a zombie
"""
)

THREADED = (
    JOIN_CGROUP
    + f"""
import threading, time
event = threading.Event()
for _ in range({EXTRA_THREADS}):
    threading.Thread(target=event.wait, daemon=True).start()
print("ready", flush=True)
time.sleep(120)
"""
)


def start(code: str, cgroup: Path | None) -> subprocess.Popen:
    arguments = [sys.executable, "-c", code] + ([str(cgroup)] if cgroup else [])
    return subprocess.Popen(arguments, stdout=subprocess.PIPE)


def wait_for_zombies(parent: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = psutil.Process(parent).children()
        if len(children) == ZOMBIES and all(c.status() == psutil.STATUS_ZOMBIE for c in children):
            return
        time.sleep(0.02)
    pytest.fail(f"the {ZOMBIES} children of {parent} did not all become zombies")


@contextlib.contextmanager
def spawn_population(cgroup: Path | None = None):
    """The zombie maker and the threaded process, optionally both inside one pids cgroup.

    Every process is stopped and reaped on the way out, also when the test fails; the zombie
    maker reaps its zombies itself when told to stop.
    """
    children = []
    try:
        maker = start(ZOMBIE_MAKER, cgroup)
        children.append(maker)
        threaded = start(THREADED, cgroup)
        children.append(threaded)
        for child in children:
            assert child.stdout.readline() == b"ready\n"
        wait_for_zombies(maker.pid)
        yield maker, threaded
    finally:
        for child in children:
            stop(child)


@pytest.fixture
def population():
    with spawn_population() as spawned:
        yield spawned


def census() -> list[SimpleNamespace]:
    """Every process in /proc, each read with the agent's own stat parser."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            row = procfs.parse_stat_row(Path(f"/proc/{entry.name}/stat").read_bytes())
        except (OSError, procfs.MalformedError):
            continue  # it exited meanwhile
        pid, ppid, _, state, threads, _ = row
        found.append(SimpleNamespace(pid=pid, ppid=ppid, state=state.decode(), threads=threads))
    return found


def subtree(processes, root: int) -> list:
    """The processes descending from ``root``, found from their ppid links."""
    by_parent: dict = {}
    for process in processes:
        by_parent.setdefault(process.ppid, []).append(process)
    found, todo = [], [root]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def population_of(processes, *roots) -> list:
    """The population's processes: its two roots and everything descending from them (other
    children of the test process, a session's Pushgateway say, are not part of it)."""
    found = [p for p in processes if p.pid in {root.pid for root in roots}]
    for root in roots:
        found.extend(subtree(processes, root.pid))
    return found


def psutil_subtree(*roots) -> dict:
    result = {}
    for root in roots:
        process = psutil.Process(root.pid)
        for member in [process, *process.children(recursive=True)]:
            with member.oneshot():
                result[member.pid] = (member.status(), member.num_threads(), member.ppid())
    return result


def test_sampler_counts_the_populations_zombies_and_threads_like_psutil(population):
    maker, threaded = population
    sample = Sampler(top=50).sample(time.time())
    ours = population_of(census(), maker, threaded)
    oracle = psutil_subtree(maker, threaded)
    assert {p.pid for p in ours} == set(oracle)
    for process in ours:
        status, threads, ppid = oracle[process.pid]
        assert (process.state == "Z") == (status == psutil.STATUS_ZOMBIE), process
        assert process.threads == threads, process
        assert process.ppid == ppid, process
    processes = len(ours)
    threads = sum(p.threads for p in ours)
    zombies = sum(p.state == "Z" for p in ours)
    # Exact numbers: 2 processes + 5 zombies; 1 + 5 x 1 + (1 + 6) threads.
    assert (processes, zombies, threads) == (2 + ZOMBIES, ZOMBIES, 1 + ZOMBIES + 1 + EXTRA_THREADS)
    maker_comm = psutil.Process(maker.pid).name()
    assert Culprit(maker.pid, maker_comm, ZOMBIES) in sample.zombie_parents
    assert Culprit(threaded.pid, maker_comm, 1 + EXTRA_THREADS) in sample.top_threads
    # The machine-wide totals include the population.
    assert sample.tasks.zombies >= ZOMBIES
    assert sample.tasks.tasks >= threads


def test_the_fallback_sampler_agrees_on_the_population(population):
    maker, threaded = population
    reports = []
    fallback = FallbackSampler(top=50, report=reports.append)
    sample = fallback.sample(time.time())
    comm = psutil.Process(maker.pid).name()
    assert Culprit(maker.pid, comm, ZOMBIES) in sample.zombie_parents
    assert Culprit(threaded.pid, comm, 1 + EXTRA_THREADS) in sample.top_threads
    assert sample.tasks.zombies >= ZOMBIES
    assert [r["event"] for r in reports] == ["fallback_sampler"]


@pytest.fixture
def pids_cgroup():
    if os.geteuid() != 0 or not (PIDS_V1 / "cgroup.procs").exists():
        pytest.skip("needs root and a cgroup v1 pids hierarchy at /sys/fs/cgroup/pids")
    cgroup = PIDS_V1 / f"dynostat-test-{os.getpid()}"
    cgroup.mkdir()
    try:
        yield cgroup
    finally:
        cgroup.rmdir()


def test_tasks_count_what_the_pids_cgroup_counts_zombies_included(pids_cgroup):
    """The dyno limit is the pids cgroup: a zombie holds its pid until it is reaped, so it
    counts one task. The Sampler's tasks for the population must equal pids.current."""
    with spawn_population(pids_cgroup) as (maker, threaded):
        ours = population_of(census(), maker, threaded)
        tasks = sum(p.threads for p in ours)
        pids_current = int((pids_cgroup / "pids.current").read_text())
    assert tasks == pids_current == 1 + ZOMBIES + 1 + EXTRA_THREADS
