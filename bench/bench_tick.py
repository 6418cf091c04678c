"""What one whole tick of the running agent costs, next to a C floor doing the same reads.

    sudo python3 bench/bench_tick.py [--processes 1000] [--rounds 15] [--ticks 12]
                                     [--interval 0.1] [--python /usr/bin/python3]

Builds a dyno-like world in its own PID namespace (so /proc shows only what the benchmark
starts, as a dyno's does) and its own memory and pids cgroups (a quota, as a dyno has):
a preforking server (a parent holding 40 MB, 4 workers holding 20 MB each, tests/support/
prefork.py) and sleeping processes with distinct names (bench/population.c) up to
``--processes``. Then, interleaved round by round so that drift hits both alike:

- the agent as dynos run it (``python3 -S agent/dynostat-agent``, its modules compiled first
  as the slug ships them), ``--ticks`` ticks at ``--interval``; the CPU of each tick is its own
  ``agent_cpu`` (CLOCK_PROCESS_CPUTIME_ID between two samples: the whole tick, sampling,
  formatting, warnings and writing included), cross-checked with the kernel's count for the
  process (``/proc/<pid>/schedstat``), and its peak memory is its VmHWM, read while it runs;
- the C floor (bench/floor.c) at the same interval: ``openat`` of each ``<pid>/stat`` on a
  ``/proc`` directory descriptor, one read each, the same ``smaps_rollup`` files the agent
  reads (the largest worker group, its parent and the top 3 by RSS), and the same cgroup,
  load and limits files, timed in CPU time per scan.

Prints medians and the ratio to the floor. Needs root (namespaces, cgroups) and cc.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import slug
from native import compile_helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the support package

from support import cgroups as support_cgroups
from support.paths import AGENT
from support.prefork import PreforkServer

sys.path.insert(0, str(AGENT))
from dynostat.sampler import PSS_EVERY_TICKS as PSS_EVERY

INSIDE = "DYNOSTAT_BENCH_INSIDE"
CGROUP_NAME = f"dynostat-bench-tick-{os.getpid()}"
QUOTA = 4 * 1024**3
PARENT_MB, WORKER_MB, WORKERS = 40, 20, 4
TOP = 3
GOAL_RATIO = 1.3
GOAL_HWM_MB = 10.0
CPU = re.compile(rb"sample#dynostat\.agent_cpu=([0-9.]+)ms")

AGENT_DIR = AGENT  # the agent measured; --agent-dir names another


def agent_env() -> dict[str, str]:
    """The agent as deployed: its modules compiled once (compile_agent), as a slug carries them."""
    return slug.deployed_env(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(AGENT_DIR),
            "DYNO": "web.1",
        }
    )


def compile_agent(python: str, interval: float) -> None:
    """Compile the agent's modules, then run it once so that the standard library's modules
    it imports are compiled into the same cache too (see bench/slug.py)."""
    slug.compile_into_cache(python, agent_env(), AGENT_DIR)
    agent_round(python, 2, interval)


class Cgroups(support_cgroups.Cgroups):
    """Memory and pids cgroups for everything the benchmark starts, itself included."""

    def __init__(self) -> None:
        super().__init__(CGROUP_NAME, 100000, QUOTA)

    def __enter__(self) -> Cgroups:
        super().__enter__()
        self.join()
        return self

    def files(self) -> list[str]:
        """The cgroup files one agent tick reads."""
        if self.mode == "v2":
            names = ["memory.stat", "memory.swap.current", "memory.max", "memory.events"]
        else:
            names = ["memory.stat", "memory.limit_in_bytes", "memory.oom_control"]
        return [str(self.memory_dir / name) for name in names] + [
            str(self.dirs[0] / "pids.max"),
            str(self.dirs[0] / "pids.current"),
        ]

    def __exit__(self, *exc_info: object) -> None:
        for path in self.dirs:
            (path.parent / "cgroup.procs").write_text(str(os.getpid()))
        super().__exit__(*exc_info)


def rss_pages(pid: str) -> int:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0
    return int(data[data.rfind(b")") + 2 :].split()[21])


def smaps_pids(group: list[int]) -> list[int]:
    """What the agent reads smaps_rollup for: the worker group, its parent, the top by RSS."""
    by_rss = sorted(
        (name for name in os.listdir("/proc") if name.isdigit()), key=rss_pages, reverse=True
    )
    return sorted(set(group) | {int(pid) for pid in by_rss[:TOP]})


def status_kib(pid: int, key: bytes) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return None


def schedstat_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


# Ticks (and floor scans) left out at the start of each round: the first includes the agent's
# start-up; three keep the PSS ticks of both on the same places (every PSS_EVERY-th one).
WARM = 3


def agent_round(python: str, ticks: int, interval: float) -> tuple[list[float], float, float]:
    """(agent_cpu ms of ``ticks`` ticks after the first WARM, schedstat ms per tick over the
    same ticks, VmHWM MB read while the agent still runs)."""
    command = [
        python,
        "-S",
        str(AGENT_DIR / "dynostat-agent"),
        "--interval",
        str(interval),
        "--count",
        str(WARM + ticks + 1),
    ]
    process = subprocess.Popen(command, env=agent_env(), stdout=subprocess.PIPE)
    cpu: list[float] = []
    start_ns = end_ns = None
    hwm = None
    try:
        for line in process.stdout:
            if b"at=error" in line:
                raise SystemExit(f"bench: the agent reported an error: {line!r}")
            match = CPU.search(line)
            if match is None:
                continue
            cpu.append(float(match.group(1)))
            if len(cpu) == WARM:
                start_ns = schedstat_ns(process.pid)
            if len(cpu) == WARM + ticks:
                # The agent is sleeping before its last tick: its peak so far is its peak.
                end_ns = schedstat_ns(process.pid)
                hwm = status_kib(process.pid, b"VmHWM:")
    finally:
        process.wait()
    if hwm is None or start_ns is None or end_ns is None:
        raise SystemExit("bench: the agent stopped before its ticks were done")
    return cpu[WARM : WARM + ticks], (end_ns - start_ns) / ticks / 1e6, hwm / 1024


def floor_round(
    floor: Path, ticks: int, interval: float, smaps: list[int], files: list[str]
) -> list[float]:
    """CPU ms of ``ticks`` floor scans after the first WARM, smaps_rollup on every PSS_EVERY-th
    scan as the agent reads them on every PSS_EVERY-th tick."""
    command = [str(floor), "/proc", str(WARM + ticks), "--interval", str(interval)]
    if smaps:
        command += ["--smaps", ",".join(map(str, smaps)), "--smaps-every", str(PSS_EVERY)]
    for path in files:
        command += ["--file", path]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return [int(line) / 1e6 for line in result.stdout.split()][WARM:]


def long_run(python: str, ticks: int) -> list[tuple[int, float]]:
    """The agent's VmHWM along one run of ``ticks`` ticks at 0.02 s: where its memory settles
    once the allocator has seen every kind of tick many times."""
    command = [python, "-S", str(AGENT_DIR / "dynostat-agent"), "--interval", "0.02"]
    command += ["--count", str(ticks + 1)]
    marks = {1, 10, 100, ticks // 4, ticks // 2, ticks}
    found = []
    process = subprocess.Popen(command, env=agent_env(), stdout=subprocess.PIPE)
    seen = 0
    try:
        for line in process.stdout:
            if CPU.search(line) is None:
                continue
            seen += 1
            if seen in marks:
                found.append((seen, (status_kib(process.pid, b"VmHWM:") or 0) / 1024))
    finally:
        process.wait()
    return found


def count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


class Results:
    """What the rounds measured: per-tick CPU of the agent and of the floor, the agent's peaks."""

    def __init__(self) -> None:
        self.agent_cpu: list[float] = []  # ms per tick, from agent_cpu
        self.agent_sched: list[float] = []  # ms per tick, schedstat, one mean per round
        self.hwm: list[float] = []  # MB, VmHWM, one per round
        self.floor_cpu: list[float] = []  # ms per scan, at the agent's interval
        self.floor_hot: list[float] = []  # ms per scan, scans back to back
        self.present = 0
        self.smaps: list[int] = []
        self.long_run: list[tuple[int, float]] = []  # (tick, VmHWM MB) along one long run


def run(args: argparse.Namespace) -> int:
    build = Path(tempfile.mkdtemp(prefix="dynostat-bench-"))
    results = Results()
    try:
        floor, population_binary = compile_helpers(build)
        compile_agent(args.python, args.interval)
        server = PreforkServer(PARENT_MB, WORKER_MB, WORKERS, comm="puma")
        with Cgroups() as cgroups, server:
            others = max(args.processes - count_processes() - 2, 0)
            population = subprocess.Popen(
                [str(population_binary), str(others), "names"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            try:
                population.stdout.readline()
                measure(args, floor, cgroups, [server.parent, *server.workers], results)
                if args.long_ticks:
                    results.long_run = long_run(args.python, args.long_ticks)
            finally:
                population.stdin.close()
                population.wait()
        report(args, results)
    finally:
        shutil.rmtree(build, ignore_errors=True)
        slug.remove_cache()
    return 0


def measure(args, floor: Path, cgroups: Cgroups, group: list[int], results: Results) -> None:
    results.present = count_processes() + 1  # and the agent itself
    files = ["/proc/loadavg", "/proc/self/limits", "/proc/self/statm", *cgroups.files()]
    results.smaps = [] if args.without_pss else smaps_pids(group)
    for round_number in range(args.rounds):
        order = ("agent", "floor") if round_number % 2 == 0 else ("floor", "agent")
        for name in order:
            if name == "agent":
                cpu, sched, peak = agent_round(args.python, args.ticks, args.interval)
                results.agent_cpu += cpu
                results.agent_sched.append(sched)
                results.hwm.append(peak)
            else:
                results.floor_cpu += floor_round(
                    floor, args.ticks, args.interval, results.smaps, files
                )
                results.floor_hot += floor_round(floor, args.ticks, 0, results.smaps, files)


def kinds(values: list[float], ticks: int, pss: bool) -> tuple[list[float], list[float]]:
    """(the ticks that read smaps_rollup, the others): every PSS_EVERY-th tick of a round."""
    if not pss:
        return [], values
    reads = [v for index, v in enumerate(values) if (index % ticks) % PSS_EVERY == 0]
    others = [v for index, v in enumerate(values) if (index % ticks) % PSS_EVERY != 0]
    return reads, others


def report(args, results: Results) -> None:
    pss = bool(results.smaps)
    agent_reads, agent_others = kinds(results.agent_cpu, args.ticks, pss)
    floor_reads, floor_others = kinds(results.floor_cpu, args.ticks, pss)
    hot_reads, hot_others = kinds(results.floor_hot, args.ticks, pss)
    hwm = results.hwm
    print(
        f"# One whole tick: {results.present} processes, a {WORKERS}-worker group, "
        f"{len(results.smaps)} smaps_rollup reads every {PSS_EVERY if pss else '-'} ticks, "
        f"interval {args.interval} s, {args.rounds} rounds of {args.ticks} ticks "
        f"({os.cpu_count()} CPUs, {args.python}; load {os.getloadavg()[0]:.2f})\n"
    )
    print("| CPU ms per tick | agent | C floor | x floor | floor back to back | x that |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [("mean of every tick", statistics.fmean, results.agent_cpu, results.floor_cpu,
             results.floor_hot)]  # fmt: skip
    if pss:
        rows.append(("median, ticks reading smaps_rollup", statistics.median, agent_reads,
                     floor_reads, hot_reads))  # fmt: skip
    rows.append(("median, the other ticks", statistics.median, agent_others, floor_others,
                 hot_others))  # fmt: skip
    ratios = []
    for label, summary, agent, floor, hot in rows:
        a, f, h = summary(agent), summary(floor), summary(hot)
        ratios.append(a / f)
        print(f"| {label} | {a:.2f} | {f:.2f} | {a / f:.2f} | {h:.2f} | {a / h:.2f} |")
    sched = statistics.median(results.agent_sched)
    print(
        f"\nschedstat, the kernel's count for the agent: {sched:.2f} ms per tick (median of the "
        f"rounds' means; agent_cpu's mean: {statistics.fmean(results.agent_cpu):.2f})"
    )
    rounds = " ".join(f"{peak:.2f}" for peak in hwm)
    print(
        f"agent VmHWM: median {statistics.median(hwm):.2f} MB, max {max(hwm):.2f} MB "
        f"(rounds: {rounds})"
    )
    if results.long_run:
        along = ", ".join(f"{peak:.2f} MB at tick {tick}" for tick, peak in results.long_run)
        print(f"agent VmHWM along one run of {results.long_run[-1][0]} ticks: {along}")
    worst = max(ratios)
    print(
        f"\n- whole tick <= {GOAL_RATIO}x the floor: mean {ratios[0]:.2f}x, worst kind "
        f"{worst:.2f}x ({'met' if worst <= GOAL_RATIO else 'NOT met'})"
    )
    peak = max([*hwm, *(mb for _, mb in results.long_run)])
    print(
        f"- VmHWM <= {GOAL_HWM_MB} MB: {peak:.2f} MB at most "
        f"({'met' if peak <= GOAL_HWM_MB else 'NOT met'})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ticks", type=int, default=12)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument(
        "--long-ticks", type=int, default=1500, help="ticks of the long run (0: none)"
    )
    parser.add_argument(
        "--python",
        default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable,
    )
    parser.add_argument(
        "--without-pss",
        action="store_true",
        help="the floor reads no smaps_rollup (for an agent that reads none)",
    )
    parser.add_argument(
        "--agent-dir",
        type=Path,
        help="the agent to measure (the directory holding dynostat-agent), e.g. an older one",
    )
    args = parser.parse_args()
    if args.agent_dir is not None:
        global AGENT_DIR  # noqa: PLW0603 - one agent per run of the benchmark
        AGENT_DIR = args.agent_dir.resolve()
    if os.environ.get(INSIDE) == "1":
        return run(args)
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root (a PID namespace and cgroups)")
    # In a PID namespace of its own, /proc shows only what the benchmark starts, as on a dyno.
    command = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, *sys.argv]
    return subprocess.run(command, env={**os.environ, INSIDE: "1"}, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
