"""Live: the agent as dynos run it, in a PID namespace and a memory cgroup of the test's own,
against real processes: a preforking server checked against the kernel's smaps_rollup, a
real OOM kill at the cgroup's limit, and a real steady leak whose ETA is checked against the
time it then really takes.
"""

from __future__ import annotations

import json
import math
import os
import time

import pytest

from support import readme_decoder
from support.cgroups import Cgroups
from support.pidns import Namespace, unsupported_reason

MB = 1024 * 1024
WARN_MEMORY_PCT = 90  # the default DYNOSTAT_WARN_MEMORY_PCT


@pytest.fixture
def cgroups(request):
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    limit = request.param
    with Cgroups(f"dynostat-test-{os.getpid()}-{request.node.name[:40]}", 256, limit) as made:
        yield made


def fields(line: str) -> dict[str, str]:
    return readme_decoder.fields(line)


def megabytes(value: str) -> float:
    assert value.endswith("MB"), value
    return float(value[:-2])


def go_seconds(duration: str) -> float:
    """``2h10m``, ``45m``, ``3m20s``, ``30s`` in seconds."""
    seconds, number = 0.0, ""
    for char in duration:
        if char.isdigit():
            number += char
            continue
        seconds += int(number) * {"h": 3600, "m": 60, "s": 1}[char]
        number = ""
    assert not number, duration
    return seconds


# The namespace's PID 1 for the preforking server: it starts the server, runs the agent once,
# then reads every server process's smaps_rollup itself and prints what it read as JSON. It
# waits 3 s before the agent runs: the kernel folds a cgroup's per-CPU counts into its
# memory.stat every 2 s, and the server has just filled its memory.
PREFORK = """
import json, subprocess, sys, time
from pathlib import Path
from support.pidns import agent_command
from support.prefork import PreforkServer

def rollup(pid):
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    kb = {k: int(v.split()[0]) for k, v in (l.split(":", 1) for l in text.splitlines()[1:])}
    rss = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[21]) * 4096
    return kb["Pss"] * 1024, (kb["Private_Clean"] + kb["Private_Dirty"]) * 1024, rss

with PreforkServer(30, 12, 3, comm="prefork") as server:
    time.sleep(3)
    agent = subprocess.run(agent_command("--once"), capture_output=True, text=True)
    figures = {pid: rollup(pid) for pid in [server.parent, *server.workers]}
    print(json.dumps({"lines": agent.stdout.splitlines(), "stderr": agent.stderr,
                      "parent": server.parent, "workers": server.workers,
                      "figures": figures}), flush=True)
    sys.stdin.read()  # hold the server until the test is done reading the cgroup
"""


@pytest.mark.parametrize("cgroups", [1024 * MB], indirect=True)
def test_a_preforking_server_s_pss_uss_and_fits_agree_with_the_kernel(cgroups):
    with Namespace(PREFORK, cgroups=cgroups) as namespace:
        report = json.loads(namespace.readline(timeout=60) or "{}")
        stat = cgroups.memory_stat()
    assert report["stderr"] == ""
    lines = report["lines"]
    assert not [line for line in lines if "at=error" in line or "at=warn" in line], lines
    [workers_line] = [line for line in lines if "event=workers" in line]
    printed = fields(workers_line)
    parent, workers = report["parent"], report["workers"]
    figures = {int(pid): values for pid, values in report["figures"].items()}
    assert (printed["pid"], printed["comm"], printed["workers"]) == (str(parent), "prefork", "3")

    # The kernel's own figures, read by the test right after the agent's sample, to within
    # the 0.01 MB the line prints and what a sleeping process changes in a moment.
    def close(printed_mb: str, kernel_bytes: float) -> bool:
        return abs(megabytes(printed_mb) - kernel_bytes / MB) <= 0.05 + 0.01 * kernel_bytes / MB

    worker_pss = [figures[pid][0] for pid in workers]
    worker_uss = [figures[pid][1] for pid in workers]
    assert close(printed["worker_pss"], sum(worker_pss) / len(worker_pss))
    assert close(printed["worker_uss"], max(worker_uss))
    assert close(printed["parent_pss"], figures[parent][0])
    # Each worker wrote its own 12 MB; the parent's 30 MB are shared by all four processes,
    # whole in each one's RSS, a quarter in each one's PSS, in nobody's USS.
    assert min(worker_uss) >= 12 * MB
    assert figures[parent][1] < 12 * MB
    assert all(figures[pid][2] >= 30 * MB for pid in [parent, *workers])
    assert figures[parent][0] >= 30 * MB / 4

    # Why RSS misleads: it counts the shared pages once per process, so the server's RSS adds
    # up to more than twice what the whole cgroup holds; PSS splits each page among the
    # processes that map it, and adds up to less than half that RSS.
    anon = stat.get("total_rss", stat.get("anon"))
    used = anon + stat.get("total_cache", stat.get("file"))
    server = [parent, *workers]
    assert sum(figures[pid][2] for pid in server) > 2 * used
    assert sum(figures[pid][0] for pid in server) < sum(figures[pid][2] for pid in server) / 2

    # fits by the README's formula from the same sample's memory line (MB to two decimals,
    # so one worker either way at a boundary) and the worker_uss the kernel confirmed above.
    [memory] = [fields(line) for line in lines if "memory_quota=" in line]
    quota = megabytes(memory["sample#dynostat.memory_quota"])
    rss = megabytes(memory["sample#dynostat.memory_rss"])
    swap = megabytes(memory["sample#dynostat.memory_swap"])
    assert quota == cgroups.read_memory_limit() / MB
    more = (quota * WARN_MEMORY_PCT / 100 - rss - swap) / megabytes(printed["worker_uss"])
    assert abs(int(printed["fits"]) - (3 + math.floor(more))) <= 1

    [top] = [line for line in lines if "top#pss=" in line]
    pss_entries = readme_decoder.top(fields(top)["top#pss"])
    assert pss_entries[0][0] in workers  # 12 MB of their own and a share of the parent's
    for pid, _, value in pss_entries:
        assert close(value, figures[pid][0])


# The namespace's PID 1 for the OOM kill: the agent and a process named hog that allocates
# until the kernel kills it at the cgroup's limit. The hog's oom_score_adj is 1000, so the
# kernel picks it whatever else the cgroup holds (lowering the agent's instead would need
# CAP_SYS_RESOURCE, which a container may not grant even to root).
OOM = """
import os, subprocess, sys, time
from support.pidns import agent_command

def set_oom_score_adj(value):
    with open("/proc/self/oom_score_adj", "w") as file:
        file.write(str(value))

HOG = '''
import time
with open("/proc/self/comm", "w") as comm:
    comm.write("hog")
held, start = [], time.monotonic()
for step in range(10000):
    held.append(bytearray(b"\\\\x01") * (4 << 20))
    time.sleep(max(0.0, start + 0.05 * step - time.monotonic()))
'''

agent = subprocess.Popen(agent_command("--interval", "0.2"))
time.sleep(1)
hog = subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=lambda: set_oom_score_adj(1000))
print(f"hog pid={hog.pid}", flush=True)
print(f"hog exited status={hog.wait()}", flush=True)
agent.wait()
"""


@pytest.mark.parametrize("cgroups", [160 * MB], indirect=True)
def test_a_real_oom_kill_is_counted_and_its_victim_named(cgroups):
    with Namespace(OOM, cgroups=cgroups) as namespace:
        started, _ = namespace.wait_for(lambda line: line.startswith("hog pid="), 30)
        hog = started.split("=", 1)[1]
        exited, _ = namespace.wait_for(lambda line: line.startswith("hog exited"), 60)
        warning, _ = namespace.wait_for(lambda line: "event=oom_kill" in line, 10)
        memory, _ = namespace.wait_for(lambda line: "memory_oom_kills=" in line, 5)
        kills = cgroups.oom_kills()
    assert exited == "hog exited status=-9"  # SIGKILL, from the OOM killer
    assert kills == 1
    printed = fields(warning)
    assert (printed["at"], printed["oom_kills"], printed["pid"], printed["comm"]) == (
        "warn",
        "1",
        hog,
        "hog",
    )
    # Its rss at the sample before the kill: well on the way to the 160 MB limit.
    assert 40 <= megabytes(printed["rss"]) <= 160
    assert fields(memory)["sample#dynostat.memory_oom_kills"] == "1"


# The namespace's PID 1 for a leak: a process named leaky that grows 2 MB every 50 ms until
# the cgroup holds 95 % of its limit, then holds; the agent samples every 0.2 s.
LEAK = """
import subprocess, sys, time
from support.pidns import agent_command

LEAKY = '''
import sys, time
with open("/proc/self/comm", "w") as comm:
    comm.write("leaky")
stat_path, limit = sys.argv[1], int(sys.argv[2])
def used():
    stat = dict(line.split() for line in open(stat_path))
    if "total_rss" in stat:
        return int(stat["total_rss"]) + int(stat["total_cache"])
    return int(stat["anon"]) + int(stat["file"])
held, start = [], time.monotonic()
for step in range(100000):
    if used() < 0.95 * limit:
        held.append(bytearray(b"\\\\x01") * (2 << 20))
    time.sleep(max(0.0, start + 0.05 * step - time.monotonic()))
'''

leaky = subprocess.Popen([sys.executable, "-c", LEAKY, *sys.argv[1:]])
time.sleep(0.5)
agent = subprocess.Popen(agent_command("--interval", "0.2"))
print(f"leaky pid={leaky.pid}", flush=True)
agent.wait()
"""


@pytest.mark.parametrize("cgroups", [512 * MB], indirect=True)
def test_a_steady_leak_warns_with_an_eta_the_leak_then_keeps(cgroups):
    limit = cgroups.read_memory_limit()
    line = limit * WARN_MEMORY_PCT / 100
    stat = str(cgroups.memory_dir / "memory.stat")
    with Namespace(LEAK, stat, str(limit), cgroups=cgroups) as namespace:
        started, _ = namespace.wait_for(lambda text: text.startswith("leaky pid="), 30)
        leaky = started.split("=", 1)[1]
        warning, warned_at = namespace.wait_for(lambda text: "event=memory_growing" in text, 30)
        reached_at = None
        while reached_at is None:
            if cgroups.memory_total() >= line:
                reached_at = time.monotonic()
            elif time.monotonic() - warned_at > 120:
                pytest.fail("the leak never reached the line")
            else:
                namespace.readline(timeout=0.01)  # keeps the pipe drained while waiting
    printed = fields(warning)
    assert (printed["pid"], printed["comm"]) == (leaky, "leaky")
    assert megabytes(printed["memory_quota"]) == limit / MB
    # 2 MB per 50 ms is 144000 MB/h, give or take the machine's scheduling.
    rate = float(printed["rate"].removesuffix("MB/h"))
    assert 0.6 * 144000 <= rate <= 1.2 * 144000
    eta, took = go_seconds(printed["eta"]), reached_at - warned_at
    assert abs(eta - took) <= 0.35 * took, (printed["eta"], f"{took:.1f}s")
