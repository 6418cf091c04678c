"""Every benchmark runs on the current code, in a configuration small enough for the suite.

The figures in the README and docs come from these scripts; a script that no longer runs, or
that measures something other than what its table says, would leave those figures unproven.
These runs check that each script finishes, and that what it measured is the agent: no
figure here is compared with a goal (speed is for the benchmarks themselves, on a quiet
machine, not for a suite that shares the machine with other work).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.browser import CHROMIUM
from support.paths import REPO


def run_bench(*command: str, timeout: float = 600) -> str:
    # The test environment's Python and its scripts (dynostat-report) first, as after
    # activating it.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    result = subprocess.run(
        list(command),
        cwd=REPO,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result.stdout


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table rows whose first cell is ``first_cell``."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            rows.append(cells)
    return rows


def test_bench_scan_measures_the_agent_its_alternatives_and_a_sampler_loop():
    if shutil.which("cc") is None:
        pytest.skip("no C compiler for the floor (bash tests/run installs gcc)")
    out = run_bench(sys.executable, "bench/bench_scan.py", "--sizes", "64", "--rounds", "2")
    methods = {row[1] for row in re.findall(r"^\| (\d+) \| ([^|]+?) \|", out, re.M)}
    assert {
        "C floor (floor.c)",
        "agent Sampler.sample",
        "agent procfs scan only",
        "psutil process_iter",
        "ps -eo stat,ppid,nlwp,rss",
    } <= methods
    memory = [
        line.strip("|").split("|") for line in out.splitlines() if re.match(r"\| \d+ \| `", line)
    ]
    assert memory
    for _, _, alone, sampler_loop, agent, first_line in memory:
        # The Sampler loop imported the agent and sampled: more than the bare interpreter.
        assert float(sampler_loop) > float(alone), out
        assert float(agent) > float(alone), out
        assert float(first_line) > 0


def test_bench_push_runs_the_agent_with_every_sink_and_both_writers(tmp_path):
    out = run_bench(
        sys.executable, "bench/bench_push.py", "--rounds", "1", "--count", "3",
        "--sends", "5", "--encodings", "5", "--work", str(tmp_path),
    )  # fmt: skip
    # The first table: a name in 20 columns, then agent_rss, x off, VmHWM, agent_cpu, x off.
    first_table = out.split("\n\n")[0].splitlines()[2:]
    rows = {line[:20].strip(): [float(cell) for cell in line[20:].split()] for line in first_table}
    assert {"push off", "otlp protobuf", "otlp json", "otlp runtime"} <= set(rows), out
    assert all(len(cells) == 5 for cells in rows.values()), out
    # Pushing costs memory: the rows measured what their names say.
    assert rows["otlp protobuf"][0] > rows["push off"][0], out
    assert "protobuf (agent)" in out
    assert "protobuf (runtime)" in out


def test_bench_soak_reads_the_agents_memory_along_its_ticks():
    out = run_bench(sys.executable, "bench/bench_soak.py", "--ticks", "20", "--interval", "0.01")
    ticks = [int(row[0]) for row in re.findall(r"^\| (\d+) \| ([0-9.]+) \|$", out, re.M)]
    assert ticks[0] == 1
    assert ticks[-1] == 20


def test_bench_smaps_times_reads_of_a_process_of_each_size():
    out = run_bench(sys.executable, "bench/bench_smaps.py", "--sizes", "10,50", "--reads", "3")
    assert table_rows(out, "10")
    assert table_rows(out, "50")


def test_bench_launcher_times_every_kind_of_sourcing():
    out = run_bench("bash", "bench/bench_launcher.sh", "3")
    for label in (
        "empty file (baseline)",
        "launcher, web.1 (starts the agent)",
        "launcher, web.1, POSIX-mode shell",
        "launcher, run.1 (starts nothing)",
    ):
        assert re.search(re.escape(label) + r"\s+[0-9.]+\s+[0-9.]+", out), out


def test_bench_tick_measures_the_running_agent_against_the_floor():
    if os.geteuid() != 0:
        pytest.skip("bench_tick needs root for its PID namespace and cgroups")
    out = run_bench(
        sys.executable, "bench/bench_tick.py", "--processes", "80", "--rounds", "1",
        "--ticks", "4", "--long-ticks", "0",
    )  # fmt: skip
    mean = table_rows(out, "mean of every tick")
    assert mean, out
    agent_ms, floor_ms = float(mean[0][1]), float(mean[0][2])
    assert agent_ms > 0
    assert floor_ms > 0
    assert re.search(r"agent VmHWM: median [0-9.]+ MB", out), out


def test_bench_report_reads_a_generated_day_and_opens_its_page():
    if shutil.which("dynostat-report", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("dynostat-report is not installed: pip install -e '.[report]'")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (bash tests/run installs it)")
    out = run_bench(
        sys.executable, "bench/bench_report.py", "--runs", "1", "--dynos", "2", "--hours", "0.5"
    )
    assert re.search(r"^\| [0-9,]+ \| 2 \| [0-9.]+ \|", out, re.M), out
    assert re.search(r"^\| [0-9.]+ \| \d+ \| [0-9.]+ \| 2 \|", out, re.M), out
