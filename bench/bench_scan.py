"""What one sample costs, next to the alternatives and to a C floor, at 256/1000/5000 processes.

    python3 bench/bench_scan.py [--sizes 256,1000,5000] [--rounds 25]

For each size the script starts a population of that many sleeping processes (bench/
population.c), then measures, interleaved round by round so that drift hits every method
alike:

- the agent: ``Sampler.sample`` (load, cgroup memory and pids, limits, the full /proc scan
  and the culprits) and the bare ``procfs.scan_processes``;
- psutil ``process_iter(['status', 'ppid', 'num_threads', 'memory_info'])``;
- ``ps -eo stat,ppid,nlwp,rss`` (a fork+exec per sample, which is what using it would cost);
- the C floor (bench/floor.c): ``openat`` on a ``/proc`` descriptor, one read and the parse of
  each ``/proc/<pid>/stat``, and the ``smaps_rollup`` files the agent reads on the samples it
  reads them (every third), timed in wall time like the rest here.

It prints medians and ratios to the floor as markdown, then the resident memory of the bare
interpreter, of a Sampler loop and of the running agent started as the dyno launcher starts
it (``python3 -S agent/dynostat-agent --interval 0.05``), and the time from start to the
agent's first line. The agent's modules are compiled first (into a temporary pycache), as
they are in a slug.
Needs cc and psutil (run it with .venv-test/bin/python, which ``bash tests/run`` makes); root
only to raise RLIMIT_NPROC when it is too low.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import slug
from native import compile_helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the support package

from support.paths import AGENT, AGENT_PACKAGE, AGENT_SCRIPT, SYSTEM_PYTHON

sys.path.insert(0, str(AGENT))

from dynostat import procfs
from dynostat.sampler import PSS_EVERY_TICKS, Sampler

SCANS_PER_ROUND = 4  # the first scan of each round warms caches and is dropped
PS_COMMAND = ["ps", "-eo", "stat,ppid,nlwp,rss"]
PSUTIL_ATTRS = ["status", "ppid", "num_threads", "memory_info"]
SAMPLE = "agent Sampler.sample"
GOAL_RATIO = 1.3
GOAL_RSS_MB = 10
GOAL_FIRST_LINE_MS = 150


def raise_process_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = hard if hard == resource.RLIM_INFINITY else max(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NPROC, (new, new))


class Population:
    """N sleeping processes; killed and reaped on exit (and by PDEATHSIG if we die)."""

    def __init__(self, binary: Path, size: int) -> None:
        self.size = size
        self.process = subprocess.Popen(
            [str(binary), str(size)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def __enter__(self) -> Population:
        line = self.process.stdout.readline().decode()
        if line.strip() != f"ready {self.size}":
            self.__exit__()
            raise RuntimeError(f"population of {self.size} did not start: {line!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.stdin.close()  # EOF: the population kills and reaps its children
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def timed(function, scans: int) -> list[float]:
    """Seconds per call for ``scans`` calls, the first (cold) one dropped."""
    times = []
    for _ in range(scans):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times[1:]


def agent_smaps_pids() -> list[int]:
    """The processes whose smaps_rollup the agent reads, chosen by the agent's own scan: the
    three with most rss, the largest worker group's workers (the at most 64 the scan keeps) and
    its parent."""
    table = procfs.scan_processes("/proc", lambda path, error, kind: None)
    pids = {culprit.pid for culprit in table.most_rss.culprits()}
    if table.group is not None:
        pids.update(table.group.members)
        pids.add(table.group.ppid)
    return sorted(pids)


def floor_times(binary: Path) -> list[float]:
    """The floor's scans, reading the same smaps_rollup files as the agent as often: on every
    PSS_EVERY_TICKS-th scan."""
    smaps = ",".join(map(str, agent_smaps_pids()))
    result = subprocess.run(
        [str(binary), "/proc", str(SCANS_PER_ROUND), "--clock", "wall", "--smaps", smaps,
         "--smaps-every", str(PSS_EVERY_TICKS)],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    return [int(line) / 1e9 for line in result.stdout.split()][1:]


def measure(floor: Path, rounds: int) -> dict[str, list[float]]:
    try:
        import psutil
    except ImportError:
        raise SystemExit(
            "bench: psutil is needed; run this with the test environment's Python "
            "(.venv-test/bin/python, made by bash tests/run)"
        ) from None

    sampler = Sampler()
    ignore = lambda path, error, kind: None  # noqa: E731 - vanished pids are expected here
    methods = {
        "C floor (floor.c)": lambda: floor_times(floor),
        SAMPLE: lambda: timed(lambda: sampler.sample(time.time()), SCANS_PER_ROUND),
        "agent procfs scan only": lambda: timed(
            lambda: procfs.scan_processes("/proc", ignore), SCANS_PER_ROUND
        ),
        "psutil process_iter": lambda: timed(
            lambda: list(psutil.process_iter(PSUTIL_ATTRS)), SCANS_PER_ROUND
        ),
        "ps -eo stat,ppid,nlwp,rss": lambda: timed(
            lambda: subprocess.run(PS_COMMAND, stdout=subprocess.DEVNULL, check=True), 3
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_number in range(rounds):
        # Rotate the order so no method always runs right after the same other one.
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].extend(methods[name]())
    return times


def count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def agent_command(python: str, flags: list[str], count: int) -> list[str]:
    # The entry script the launcher runs on dynos: like -m dynostat, without runpy's imports.
    return [python, *flags, str(AGENT_SCRIPT), "--interval", "0.05", "--count", str(count)]


def agent_env() -> dict[str, str]:
    """The agent as deployed: its modules compiled once (compile_agent), as a slug carries them."""
    return slug.deployed_env({**os.environ, "PYTHONPATH": str(AGENT), "DYNO": "bench.1"})


def compile_agent(python: str) -> None:
    slug.compile_into_cache(python, agent_env(), AGENT)


def rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(b"VmRSS:"):
            return int(line.split()[1])
    return None


SAMPLER_LOOP = (
    "import time\n"
    "from dynostat.sampler import Sampler\n"
    "sampler = Sampler()\n"
    "for _ in range(40):\n"
    "    sampler.sample(time.time())\n"
    "    time.sleep(0.05)\n"
)


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident MB of a command while it runs (VmRSS polled every 10 ms)."""
    process = subprocess.Popen(command, env=agent_env(), stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, rss_kib(process.pid) or 0)
        time.sleep(0.01)
    return peak / 1024


def memory_row(python: str, flags: list[str], have_cli: bool) -> tuple:
    """(interpreter alone, a Sampler loop alone, the whole agent over 40 ticks), in MB."""
    return (
        peak_rss_mb([python, *flags, "-c", "import time; time.sleep(1)"]),
        peak_rss_mb([python, *flags, "-c", SAMPLER_LOOP]),
        peak_rss_mb(agent_command(python, flags, 40)) if have_cli else None,
    )


def first_line_ms(python: str, flags: list[str], runs: int = 10) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen(
            agent_command(python, flags, 1), env=agent_env(), stdout=subprocess.PIPE
        )
        process.stdout.readline()
        times.append(time.perf_counter() - start)
        process.wait()
        process.stdout.close()
    return statistics.median(times) * 1000


def interpreters() -> list[tuple[str, list[str]]]:
    found = [(sys.executable, []), (sys.executable, ["-S"])]
    system = SYSTEM_PYTHON
    if os.path.exists(system) and os.path.realpath(system) != os.path.realpath(sys.executable):
        found += [(system, []), (system, ["-S"])]
    return found


def print_goals(agent_ratios: dict[int, float], memory_rows: list) -> None:
    """The issue's three goals, each with the figures above that decide it."""
    large = {present: ratio for present, ratio in agent_ratios.items() if present >= 1000}
    agent_mb = [row[3][2] for row in memory_rows if row[3][2] is not None]
    first_lines = [row[4] for row in memory_rows if row[4] is not None]
    print("\n# Goals\n")
    ratios = ", ".join(f"{ratio:.2f}x at {present}" for present, ratio in sorted(large.items()))
    met = large and max(large.values()) <= GOAL_RATIO
    print(
        f"- {SAMPLE} <= {GOAL_RATIO}x the C floor at >= 1000 processes: {ratios} "
        f"({'met' if met else 'NOT met'})"
    )
    if agent_mb:
        met = max(agent_mb) <= GOAL_RSS_MB
        print(
            f"- agent RSS <= {GOAL_RSS_MB} MB: {min(agent_mb):.2f} to {max(agent_mb):.2f} MB "
            f"({'met' if met else 'NOT met'})"
        )
    if first_lines:
        met = max(first_lines) <= GOAL_FIRST_LINE_MS
        print(
            f"- first line <= {GOAL_FIRST_LINE_MS} ms: {min(first_lines):.0f} to "
            f"{max(first_lines):.0f} ms ({'met' if met else 'NOT met'})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1000,5000")
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    have_cli = (AGENT_PACKAGE / "__main__.py").exists()
    build = Path(tempfile.mkdtemp(prefix="dynostat-bench-"))
    try:
        floor, population = compile_helpers(build)
        raise_process_limit(max(sizes) + count_processes() + 1000)
        print(f"# /proc scan cost per sample ({os.cpu_count()} CPUs, {args.rounds} rounds)\n")
        print("| processes | method | median ms | µs per process | x C floor |")
        print("|---:|---|---:|---:|---:|")
        memory_rows = []
        agent_ratios = {}
        for python, _ in interpreters():
            compile_agent(python)
        for size in sizes:
            with Population(population, size):
                present = count_processes()
                times = measure(floor, args.rounds)
                floor_median = statistics.median(times["C floor (floor.c)"])
                agent_ratios[present] = statistics.median(times[SAMPLE]) / floor_median
                for name, samples in times.items():
                    median = statistics.median(samples)
                    print(
                        f"| {present} | {name} | {median * 1000:.2f} | "
                        f"{median * 1e6 / present:.1f} | {median / floor_median:.2f} |"
                    )
                for python, flags in interpreters():
                    first_line = first_line_ms(python, flags) if have_cli else None
                    memory = memory_row(python, flags, have_cli)
                    memory_rows.append((present, python, flags, memory, first_line))
        print("\n# Resident memory (peak MB) and time to the first line\n")
        print(
            "| processes | interpreter | interpreter alone | Sampler loop | "
            "agent (`dynostat-agent --interval 0.05`) | first line ms (median of 10) |"
        )
        print("|---:|---|---:|---:|---:|---:|")
        for present, python, flags, (alone, sampler, agent), first_line in memory_rows:
            label = " ".join([python, *flags])
            agent_mb = f"{agent:.2f}" if have_cli else "n/a"
            first = f"{first_line:.0f}" if first_line is not None else "n/a"
            print(f"| {present} | `{label}` | {alone:.2f} | {sampler:.2f} | {agent_mb} | {first} |")
        print_goals(agent_ratios, memory_rows)
    finally:
        shutil.rmtree(build)
        slug.remove_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
