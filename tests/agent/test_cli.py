"""The real ``python -m dynostat`` process: lines, flags, signals, EPIPE, the lock, crashes.

Each test runs the agent as a child process on a small /proc and cgroup tree it writes into
tmp_path, so the numbers in the lines are known exactly.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import logfmtkv
import pytest

from dynostat import cli, config, supervisor
from support import readme_decoder
from support.agent import DYNO_ENV, agent_command, agent_env, run_agent, run_code, start_agent
from support.output import CapturedOutput
from support.paths import AGENT, AGENT_SCRIPT, FIXTURES
from support.processes import stop
from support.smaps import rollup

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def stat_line(process: tuple[int, str, str, int, int, int]) -> str:
    """A /proc/<pid>/stat line for (pid, comm, state, ppid, threads, rss pages)."""
    pid, comm, state, ppid, threads, rss_pages = process
    # proc(5) fields 3..24 (state .. rss), then the rest of a real line's tail.
    fields = [state, ppid, pid, pid, 0, -1, 4194560, 100, 0, 0, 0, 5, 3, 0, 0, 20, 0]
    fields += [threads, 0, 5000, 123456789, rss_pages]
    tail = "18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0"
    return f"{pid} ({comm}) {' '.join(str(f) for f in fields)} {tail}\n"


def make_tree(root: Path) -> tuple[str, str]:
    """A dyno-like tree: bash, a 'gem worker' with 8 threads and two zombie children."""
    proc, cgroup = root / "proc", root / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "loadavg").write_text("0.12 0.10 0.05 2/90 777\n")
    (proc / "self" / "cgroup").write_text("4:pids:/\n3:memory:/\n")
    (proc / "self" / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max processes             256                  256                  processes \n"
    )
    processes = [
        (1, "bash", "S", 0, 1, 1000),
        (20, "gem worker", "S", 1, 8, 25600),
        (21, "sh", "Z", 20, 1, 0),
        (22, "sh", "Z", 20, 1, 0),
    ]
    for process in processes:
        (proc / str(process[0])).mkdir()
        (proc / str(process[0]) / "stat").write_text(stat_line(process))
    (proc / "1" / "smaps_rollup").write_bytes(rollup(4000, 1500, 100, 800))
    (proc / "20" / "smaps_rollup").write_bytes(rollup(102400, 80000, 1000, 70000))
    (cgroup / "memory").mkdir(parents=True)
    (cgroup / "memory" / "memory.stat").write_text(
        f"cache {20 * MB}\nrss {100 * MB}\nswap 0\npgpgin 500\npgpgout 45\n"
        f"total_cache {20 * MB}\ntotal_rss {100 * MB}\ntotal_swap 0\n"
        "total_pgpgin 500\ntotal_pgpgout 45\n"
    )
    (cgroup / "memory" / "memory.limit_in_bytes").write_text(f"{512 * MB}\n")
    (cgroup / "memory" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
    )
    (cgroup / "pids").mkdir()
    (cgroup / "pids" / "pids.max").write_text("300\n")
    (cgroup / "pids" / "pids.current").write_text("11\n")
    return str(proc), str(cgroup)


def expected_block(source: str = "web.1", dyno: str = "d-1", pss: bool = True) -> list[str]:
    """One tick's lines; ``pss`` for a tick that reads smaps_rollup (the first, then every
    third: sampler.PSS_EVERY_TICKS)."""
    head = f"source={source} dyno={dyno}"
    return [
        f"{head} sample#dynostat.load_avg_1m=0.12 sample#dynostat.load_avg_5m=0.10"
        " sample#dynostat.load_avg_15m=0.05",
        f"{head} sample#dynostat.memory_total=120.00MB sample#dynostat.memory_rss=100.00MB"
        " sample#dynostat.memory_cache=20.00MB sample#dynostat.memory_swap=0.00MB"
        " sample#dynostat.memory_pgpgin=500pages sample#dynostat.memory_pgpgout=45pages"
        " sample#dynostat.memory_quota=512.00MB sample#dynostat.memory_oom_kills=0",
        f"{head} sample#dynostat.tasks=11 sample#dynostat.tasks_limit=256"
        " sample#dynostat.processes=4 sample#dynostat.threads=11 sample#dynostat.zombies=2"
        " sample#dynostat.agent_rss=<MB> sample#dynostat.agent_cpu=<ms>",
        f'{head} top#zombie_parents="20/gem worker:2" top#threads="20/gem worker:8"'
        f' top#rss="20/gem worker:{25600 * PAGE / MB:.2f}MB,1/bash:{1000 * PAGE / MB:.2f}MB"'
        + (' top#pss="20/gem worker:78.12MB,1/bash:1.46MB"' if pss else ""),
    ]


_COST = re.compile(r"agent_rss=\d+\.\d\dMB sample#dynostat\.agent_cpu=\d+\.\d\dms")


def normalise(line: str) -> str:
    """The agent's own cost varies run to run; everything else must match to the byte."""
    return _COST.sub("agent_rss=<MB> sample#dynostat.agent_cpu=<ms>", line)


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path)


def tree_args(tree) -> list[str]:
    return ["--proc-root", tree[0], "--cgroup-root", tree[1]]


def read_lines(child: subprocess.Popen, count: int, timeout: float = 5.0) -> list[str]:
    """Exactly ``count`` lines from the child's stdout, failing instead of hanging."""
    deadline = time.monotonic() + timeout
    buffer = b""
    fd = child.stdout.fileno()
    while buffer.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; got {buffer!r}"
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 65536)
            assert chunk, f"agent closed stdout early; got {buffer!r}"
            buffer += chunk
    lines = buffer.decode().splitlines()
    assert len(lines) == count, lines
    return lines


# -- lines -------------------------------------------------------------------------------------


def test_once_prints_one_sample_of_the_tree_byte_for_byte_and_exits_0(tree):
    result = run_agent(["--once", *tree_args(tree)])
    assert result.returncode == 0
    assert result.stderr == b""
    lines = [normalise(line) for line in result.stdout.decode().splitlines()]
    assert lines == expected_block()


def test_count_takes_that_many_samples_an_interval_apart(tree):
    started = time.monotonic()
    result = run_agent(["--count", "3", "--interval", "0.2", *tree_args(tree)])
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    lines = [normalise(line) for line in result.stdout.decode().splitlines()]
    # PSS is read on the first tick of every three.
    assert lines == expected_block() + expected_block(pss=False) * 2
    assert elapsed >= 0.4  # three samples: at start, +0.2 s, +0.4 s


def test_json_format_prints_one_parseable_object_per_interval(tree):
    result = run_agent(["--count", "2", "--interval", "0.05", "--format", "json", *tree_args(tree)])
    assert result.returncode == 0
    documents = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(documents) == 2
    for document in documents:
        assert (document["source"], document["dyno"]) == ("web.1", "d-1")
        assert document["sample"]["dynostat.tasks"] == 11
        assert document["sample"]["dynostat.memory_total"] == 120.0
        assert document["top"]["zombie_parents"] == [
            {"pid": 20, "comm": "gem worker", "zombies": 2}
        ]


def test_bad_config_vars_print_one_error_line_each_then_sample_with_defaults(tree):
    env = {"DYNOSTAT_TOP": "99", "DYNOSTAT_METRIC_PREFIX": "no spaces please"}
    result = run_agent(["--once", *tree_args(tree)], env)
    assert result.returncode == 0
    lines = [normalise(line) for line in result.stdout.decode().splitlines()]
    assert lines[:2] == [
        "source=web.1 dyno=d-1 at=error event=config_invalid var=DYNOSTAT_METRIC_PREFIX"
        ' value="no spaces please" default=dynostat. expected="up to 64 of A-Z a-z 0-9 _ . -"',
        "source=web.1 dyno=d-1 at=error event=config_invalid var=DYNOSTAT_TOP value=99"
        ' default=3 expected="whole number from 1 to 20"',
    ]
    assert lines[2:] == expected_block()


def test_the_metric_prefix_and_fir_dyno_names_reach_the_lines(tree):
    env = {"DYNO": "web-12a34b56d-e78f9", "DYNOSTAT_METRIC_PREFIX": ""}
    result = run_agent(["--once", *tree_args(tree)], env)
    first = result.stdout.decode().splitlines()[0]
    assert first == (
        "source=web-12a34b56d-e78f9 dyno=d-1 sample#load_avg_1m=0.12 sample#load_avg_5m=0.10"
        " sample#load_avg_15m=0.05"
    )


def test_a_bad_command_line_exits_2_with_usage_on_stderr(tree):
    result = run_agent(["--interval", "0"])
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"usage: dynostat" in result.stderr


def test_the_running_agent_loads_no_threading_subprocess_requests_or_argparse(tree):
    # Compared with what the interpreter itself loaded at start-up (a site .pth file may
    # import threading before any agent code runs).
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from dynostat.cli import main\n"
        f"status = main(['--once', *{tree_args(tree)!r}])\n"
        "loaded = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "{'threading', 'subprocess', 'multiprocessing', 'requests', 'argparse', 'dynostat'})\n"
        "print(status, loaded, file=sys.stderr)\n"
    )
    result = run_code(code)
    status, loaded = result.stderr.decode().strip().split(" ", 1)
    assert status == "0"
    modules = ast.literal_eval(loaded)
    assert "dynostat.sampler" in modules  # the check saw the agent's own imports
    assert [m for m in modules if not m.startswith("dynostat")] == []
    assert "dynostat.push" not in modules  # push is off: its package is never imported


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_prints_the_current_sample_and_exits_0_within_a_second(tree, signum):
    child = start_agent(["--interval", "30", *tree_args(tree)])
    try:
        first = read_lines(child, 4)
        time.sleep(0.2)  # well inside the 30 s sleep
        sent = time.monotonic()
        child.send_signal(signum)
        out, err = child.communicate(timeout=5)
        elapsed = time.monotonic() - sent
    finally:
        stop(child)
    assert child.returncode == 0
    assert elapsed < 1.0
    assert err == b""
    lines = [normalise(line) for line in first + out.decode().splitlines()]
    assert lines == expected_block() + expected_block(pss=False)


def test_sighup_is_ignored(tree):
    child = start_agent(["--interval", "0.3", *tree_args(tree)])
    try:
        read_lines(child, 4)
        child.send_signal(signal.SIGHUP)
        read_lines(child, 4)  # the next sample still comes
        assert child.poll() is None
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=5)
    finally:
        stop(child)
    assert child.returncode == 0


# -- output gone -------------------------------------------------------------------------------


def test_a_reader_that_closes_the_pipe_ends_the_agent_quietly_with_0(tree):
    child = start_agent(["--interval", "0.05", *tree_args(tree)])
    try:
        read_lines(child, 4)
        child.stdout.close()
        started = time.monotonic()
        child.wait(timeout=5)
        waited = time.monotonic() - started
        err = child.stderr.read()
    finally:
        stop(child)
    assert child.returncode == 0
    assert err == b""  # no traceback, no "Exception ignored"
    assert waited < 1.0  # it noticed at its next write, not after spinning


def test_a_pipe_into_head_ends_the_agent_with_0(tree):
    agent_cmd = shlex.join(agent_command(["--interval", "0.01", *tree_args(tree)]))
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {agent_cmd} | head -n 2"],
        env=agent_env(),
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == b""


def test_started_with_stdout_closed_it_exits_0_without_a_word(tree):
    result = subprocess.run(
        [
            "sh",
            "-c",
            'exec "$0" -m dynostat --interval 0.01 "$@" >&-',
            sys.executable,
            *tree_args(tree),
        ],
        env=agent_env(),
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, b"")


# -- the lock and the launched mode ------------------------------------------------------------


@contextlib.contextmanager
def agent_holding(lock: str, tree) -> Iterator[list[str]]:
    """An agent that has taken LOCK and samples the tree: yields its first line group, checks
    it still runs at the end of the block, and stops it."""
    holder = start_agent(["--interval", "30", "--lock", lock, *tree_args(tree)])
    try:
        yield read_lines(holder, 4)
        assert holder.poll() is None, "the agent holding the lock has exited"
    finally:
        stop(holder)


def test_a_second_agent_on_the_same_lock_exits_0_silently(tree, tmp_path):
    lock = str(tmp_path / "dynostat.lock")
    with agent_holding(lock, tree):
        second = run_agent(["--interval", "30", "--lock", lock, *tree_args(tree)], timeout=5)
        assert (second.returncode, second.stdout, second.stderr) == (0, b"", b"")
    # Once the holder is gone the lock is free again.
    third = run_agent(["--once", "--lock", lock, *tree_args(tree)])
    assert third.returncode == 0 and b"load_avg_1m" in third.stdout


def test_a_lock_held_by_any_process_keeps_the_agent_out(tree, tmp_path):
    lock = tmp_path / "held.lock"
    with open(lock, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        result = run_agent(["--once", "--lock", str(lock), *tree_args(tree)])
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_a_lock_file_that_cannot_exist_still_keeps_a_second_agent_out(tree, tmp_path):
    missing_dir = str(tmp_path / "no" / "such" / "dir" / "x.lock")
    with agent_holding(missing_dir, tree) as first_lines:
        assert [normalise(line) for line in first_lines] == expected_block()
        second = run_agent(["--once", "--lock", missing_dir, *tree_args(tree)], timeout=5)
        assert (second.returncode, second.stdout, second.stderr) == (0, b"", b"")


def test_a_lock_that_cannot_be_taken_at_all_is_reported_and_the_agent_still_samples(
    tree, tmp_path, monkeypatch
):
    def no_lock(path):
        raise OSError("no lock file (No such file or directory) and no lock socket (EPERM)")

    monkeypatch.setattr(cli.lock, "take", no_lock)
    stream = CapturedOutput()
    status = cli.main(
        ["--once", "--lock", str(tmp_path / "x.lock"), *tree_args(tree)],
        env=DYNO_ENV,
        stdout_fd=stream.fd,
    )
    assert status == 0
    lines = stream.lines()
    assert lines[0] == (
        f"source=web.1 dyno=d-1 at=error event=lock_failed path={tmp_path / 'x.lock'}"
        ' reason="OSError: no lock file (No such file or directory)'
        ' and no lock socket (EPERM)"'
    )
    assert [normalise(line) for line in lines[1:]] == expected_block()


@pytest.mark.parametrize(
    ("env_extra", "runs"),
    [
        ({"DYNOSTAT_DISABLE": "true"}, False),
        ({"DYNOSTAT_DISABLE": "1"}, False),
        ({"DYNO": "run.4821"}, False),
        ({"DYNO": "release.1"}, False),
        ({"DYNO": "scheduler.1"}, False),
        ({"DYNO": "worker-5d8f9c7b4-x2x9z", "DYNOSTAT_PROCESS_TYPES": "web"}, False),
        ({"DYNO": "web-12a34b56d-e78f9", "DYNOSTAT_PROCESS_TYPES": "web"}, True),
        ({"DYNO": "run.4821", "DYNOSTAT_PROCESS_TYPES": "all"}, True),
        ({"DYNOSTAT_DISABLE": "false"}, True),
        ({"DYNO": None}, False),  # a `heroku ps:exec` session: no dyno name
        ({"DYNO": "  "}, False),
    ],
)
def test_launched_with_a_lock_it_honours_disable_and_process_types(tree, tmp_path, env_extra, runs):
    lock = str(tmp_path / "x.lock")
    result = run_agent(["--once", "--lock", lock, *tree_args(tree)], env_extra)
    assert result.returncode == 0
    assert result.stderr == b""
    assert (b"load_avg_1m" in result.stdout) is runs
    if not runs:
        assert result.stdout == b""


def test_run_by_hand_it_samples_even_in_a_one_off_dyno(tree):
    result = run_agent(["--once", *tree_args(tree)], {"DYNO": "run.1"})
    assert b"source=run.1 " in result.stdout


# -- crashes -----------------------------------------------------------------------------------

CRASHING = (
    "import sys\n"
    "import dynostat.cli as cli\n"
    "def crash(*args, **kwargs):\n"
    "    raise RuntimeError('the loop broke')\n"
    "cli.run = crash\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def test_a_crash_prints_one_line_and_reexecutes_a_fresh_agent_after_one_interval(tree):
    started = time.monotonic()
    result = run_code(CRASHING, "--interval", "0.3", "--count", "1", *tree_args(tree))
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    assert result.stderr == b""
    lines = result.stdout.decode().splitlines()
    assert lines[0] == (
        'source=web.1 dyno=d-1 at=error event=agent_crash reason="RuntimeError: the loop broke"'
        " restarts=0 restart_in=0.3s"
    )
    # The replacement is the real `python -m dynostat` with the same arguments.
    assert [normalise(line) for line in lines[1:]] == expected_block()
    assert elapsed >= 0.3


def test_repeated_crashes_back_off(tree):
    args = ["--interval", "0.05", "--count", "1", *tree_args(tree)]
    result = run_code(CRASHING, *args, env={"DYNOSTAT_RESTARTS": "3"})
    first = result.stdout.decode().splitlines()[0]
    assert first.endswith(" restarts=3 restart_in=0.4s")


def test_a_stop_signal_during_the_restart_wait_exits_0(tree):
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING, "--interval", "30", *tree_args(tree)],
        env=agent_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        (line,) = read_lines(child, 1)
        assert "event=agent_crash" in line
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=5)
        assert time.monotonic() - sent < 1.0
    finally:
        stop(child)
    assert child.returncode == 0


def test_the_restart_wait_doubles_up_to_an_hour_and_resets_after_a_healthy_run():
    assert [supervisor.restart_wait(20, n) for n in range(4)] == [20, 40, 80, 160]
    assert supervisor.restart_wait(20, 50) == supervisor.MAX_RESTART_WAIT_S
    assert config.load({"DYNOSTAT_RESTARTS": "x"})[0].restarts == 0
    assert config.load({"DYNOSTAT_RESTARTS": "4"})[0].restarts == 4


def test_the_restart_command_is_the_same_agent_with_the_same_arguments():
    command = supervisor.restart_command(["--interval", "5", "--lock", "/tmp/a b"])
    assert command[0] == sys.executable
    assert command[-6:] == ["-m", "dynostat", "--interval", "5", "--lock", "/tmp/a b"]
    env = supervisor.restart_env({"PYTHONPATH": "/x", "DYNO": "web.1"}, 2)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(AGENT), "/x"]
    assert (env["DYNO"], env["DYNOSTAT_RESTARTS"]) == ("web.1", "2")


def test_an_agent_started_by_the_entry_script_restarts_through_it_again():
    script = str(AGENT_SCRIPT)
    command = supervisor.restart_command(["--lock", "/tmp/l"], script=script)
    assert command[0] == sys.executable
    assert command[-3:] == [script, "--lock", "/tmp/l"]
    assert "-m" not in command


def test_the_entry_script_runs_the_agent_like_dash_m(tmp_path):
    proc, cgroup = make_tree(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            str(AGENT_SCRIPT),
            "--once",
            "--proc-root",
            proc,
            "--cgroup-root",
            cgroup,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=agent_env(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["sample"]["dynostat.tasks"] == 11


def test_comms_with_spaces_and_parens_from_a_captured_tree_are_quoted_whole():
    fixture = FIXTURES / "comm-with-parens"
    result = run_agent(
        ["--once", "--proc-root", str(fixture / "proc"), "--cgroup-root", str(fixture / "cgroup")]
    )
    assert result.returncode == 0
    top = result.stdout.decode().splitlines()[-1]
    assert top == (
        'source=web.1 dyno=d-1 top#threads="584/((a b ) ( c d) ):3"'
        f' top#rss="584/((a b ) ( c d) ):{2048 * PAGE / MB:.2f}MB,'
        f'585/) Z 1 2 3 (:{100 * PAGE / MB:.2f}MB"'
        ' top#pss="584/((a b ) ( c d) ):4.88MB,585/) Z 1 2 3 (:0.15MB"'
    )


def test_an_empty_proc_root_prints_no_made_up_zeros_and_says_why_once(tmp_path):
    empty = tmp_path / "proc"
    empty.mkdir()
    args = ["--count", "3", "--interval", "0.05", "--proc-root", str(empty)]
    result = run_agent([*args, "--cgroup-root", str(tmp_path / "no-cgroup")])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert not [line for line in lines if re.search(r"tasks=|processes=|threads=|zombies=", line)]
    assert [line for line in lines if "at=" in line] == [
        f"source=web.1 dyno=d-1 at=warn event=proc_empty path={empty}"
    ]
    assert len([line for line in lines if "agent_rss=" in line]) == 3, "it keeps sampling"


def test_tasks_is_the_pids_cgroup_s_count_when_proc_shows_fewer_and_the_agent_says_so_once(
    tree,
):
    proc, cgroup = tree
    Path(cgroup, "pids", "pids.current").write_text("40\n")  # /proc shows 11 of them
    result = run_agent(["--count", "3", "--interval", "0.05", *tree_args(tree)])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    tasks_lines = [normalise(line) for line in lines if "sample#dynostat.tasks=" in line]
    assert tasks_lines == 3 * [
        "source=web.1 dyno=d-1 sample#dynostat.tasks=40 sample#dynostat.tasks_limit=256"
        " sample#dynostat.processes=4 sample#dynostat.threads=11 sample#dynostat.zombies=2"
        " sample#dynostat.agent_rss=<MB> sample#dynostat.agent_cpu=<ms>"
    ]
    assert [line for line in lines if "at=" in line] == [
        "source=web.1 dyno=d-1 at=warn event=proc_restricted visible_tasks=11 cgroup_tasks=40"
        f" visible_processes=4 path={proc}"
    ]


def test_a_hostile_comm_in_the_tree_reads_back_with_the_readme_decoder_and_go_logfmt(tree):
    proc, _ = tree
    hostile = b'\xff\xfe\n):,\\"= \xc3('
    stat = stat_line((20, "X", "S", 1, 8, 25600)).encode().replace(b"(X)", b"(" + hostile + b")")
    Path(proc, "20", "stat").write_bytes(stat)
    result = run_agent(["--once", *tree_args(tree)])
    assert result.returncode == 0, result.stderr
    top = result.stdout.decode("utf-8").splitlines()[-1]  # strict: valid UTF-8
    fields = readme_decoder.fields(top)
    assert logfmtkv.parse(top, strict=True) == fields
    name = hostile.decode("utf-8", "replace")
    assert readme_decoder.top(fields["top#zombie_parents"]) == [(20, name, "2")]
    assert readme_decoder.top(fields["top#threads"]) == [(20, name, "8")]
    assert [comm for _, comm, _ in readme_decoder.top(fields["top#rss"])] == [name, "bash"]


def test_a_huge_comm_in_a_fake_tree_is_cut_to_the_kernel_s_longest_and_crowds_nothing_out(tree):
    # A real kernel shows at most 64 bytes of a name; a fake tree may hold anything. Each of
    # these bytes takes 7 characters once escaped twice: uncut, the entry alone would not fit
    # in a line and every culprit list would be dropped to make room.
    proc, _ = tree
    huge = b"\x01" * 3500
    stat = stat_line((20, "X", "S", 1, 8, 25600)).encode().replace(b"(X)", b"(" + huge + b")")
    assert len(stat) < 4096, "still one stat read"
    Path(proc, "20", "stat").write_bytes(stat)
    result = run_agent(["--once", *tree_args(tree)])
    assert result.returncode == 0, result.stderr
    top = result.stdout.decode().splitlines()[-1]
    fields = readme_decoder.fields(top)
    cut = "\x01" * 64
    assert readme_decoder.top(fields["top#zombie_parents"]) == [(20, cut, "2")]
    assert readme_decoder.top(fields["top#threads"]) == [(20, cut, "8")]
    assert [comm for _, comm, _ in readme_decoder.top(fields["top#rss"])] == [cut, "bash"]


def test_a_crash_after_a_long_healthy_run_starts_the_back_off_over(monkeypatch, tree):
    readings = [1000.0]  # the start; every later reading is 700 s on

    def monotonic() -> float:
        reading = readings[-1]
        readings.append(1700.0)
        return reading

    monkeypatch.setattr(cli.time, "monotonic", monotonic)

    def crash(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(cli, "run", crash)
    calls = []
    stream = CapturedOutput()
    status = cli.main(
        ["--interval", "0.01", *tree_args(tree)],
        env={**DYNO_ENV, "DYNOSTAT_RESTARTS": "5"},
        stdout_fd=stream.fd,
        execve=lambda path, argv, env: calls.append((path, argv, env)),
    )
    assert status == 1  # only because the injected execve returned
    assert stream.getvalue() == (
        b'source=web.1 dyno=d-1 at=error event=agent_crash reason="MemoryError: out of memory"'
        b" restarts=0 restart_in=0.01s\n"
    )
    ((path, argv, env),) = calls
    assert path == sys.executable
    assert argv[argv.index("-m") :] == ["-m", "dynostat", "--interval", "0.01", *tree_args(tree)]
    assert env["DYNOSTAT_RESTARTS"] == "1"
    assert str(AGENT) in env["PYTHONPATH"].split(os.pathsep)
