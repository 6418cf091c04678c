"""How fast dynostat-report reads a day of a 50-dyno app, how much memory it takes, and how
quickly its page opens in Chromium.

    python3 bench/bench_report.py [--runs 3] [--dynos 50] [--hours 24]

Writes a realistic log (``heroku logs`` text) of DYNOS dynos over HOURS at a 20 s interval
to bench/out/: every dyno's three dynostat metric lines per tick, ``top#`` lines where
zombies or threads pile up, router lines for the web dynos (one request per dyno per tick),
log-runtime-metrics for a few dynos, and the incidents a report is for: a zombie leak into
the task limit with fork EAGAIN, H12s and a crash; a memory leak into R14, R15 and a crash;
a thread leak. Then it runs the ``dynostat-report`` command on it RUNS times (median wall
time, peak RSS of the child from ``wait4``), and opens the page in headless Chromium with the
network off to time the load (until the charts on screen are drawn), drawing every chart, and
a zoom that the charts on screen follow.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the support package

from support.browser import CHROMIUM, offline_args
from support.paths import REPO

OUT = REPO / "bench" / "out"
START = datetime(2026, 11, 27, 0, 0, 0, tzinfo=timezone.utc).timestamp()
INTERVAL = 20


def _stamp(epoch: float) -> str:
    whole = int(epoch)
    micros = round((epoch - whole) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}+00:00"


class Day:
    """The day being written: the dynos, who misbehaves when, and the random source."""

    def __init__(self, dynos: int, hours: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ticks = int(hours * 3600 / INTERVAL)
        webs = int(dynos * 0.8)
        self.names = [f"web.{n}" for n in range(1, webs + 1)]
        self.names += [f"worker.{n}" for n in range(1, dynos - webs + 1)]
        self.zombie_dyno = self.names[6 % len(self.names)]
        self.memory_dyno = self.names[12 % len(self.names)]
        self.thread_dyno = self.names[-3 % len(self.names)]
        self.runtime_metrics = set(self.names[:10])
        self.leak = (int(self.ticks * 0.70), int(self.ticks * 0.78))
        self.grow = (int(self.ticks * 0.40), int(self.ticks * 0.90))
        self.crash_zombie = self.leak[1] + 4
        self.crash_memory = self.grow[1] + 2

    def state(self, name: str, tick: int) -> tuple[int, int, float, bool]:
        """(zombies, threads, memory MB, down) of one dyno at one tick."""
        zombies = 0
        threads = 30 + self.rng.randint(0, 4)
        memory = 180.0 + self.names.index(name) * 3 + self.rng.random() * 15
        down = False
        if name == self.zombie_dyno:
            start, peak = self.leak
            if start <= tick <= self.crash_zombie:
                zombies = min(214, int(214 * (tick - start) / (peak - start)))
            down = self.crash_zombie < tick <= self.crash_zombie + 9
        if name == self.memory_dyno and self.grow[0] <= tick:
            start, end = self.grow
            if tick <= self.crash_memory:
                memory += 420 * (tick - start) / (end - start)
            down = self.crash_memory < tick <= self.crash_memory + 6
        if name == self.thread_dyno and tick > self.ticks // 2:
            threads += min(150, (tick - self.ticks // 2) // 20)
        return zombies, threads, memory, down


def _metrics(head: str, tick: int, state: tuple, load: float):
    zombies, threads, memory, _ = state
    tasks = min(256, threads + zombies + 6)
    swap = max(0.0, memory - 512)
    return tasks, [
        f"{head} sample#dynostat.load_avg_1m={load:.2f} "
        f"sample#dynostat.load_avg_5m={load * 0.8:.2f} "
        f"sample#dynostat.load_avg_15m={load * 0.6:.2f}",
        f"{head} sample#dynostat.memory_total={memory:.2f}MB "
        f"sample#dynostat.memory_rss={memory - swap - 9:.2f}MB "
        f"sample#dynostat.memory_cache=9.00MB sample#dynostat.memory_swap={swap:.2f}MB "
        f"sample#dynostat.memory_pgpgin={1000 + tick}pages "
        f"sample#dynostat.memory_pgpgout={800 + tick}pages "
        "sample#dynostat.memory_quota=512.00MB",
        f"{head} sample#dynostat.tasks={tasks} sample#dynostat.tasks_limit=256 "
        f"sample#dynostat.processes={6 + zombies} sample#dynostat.threads={tasks} "
        f"sample#dynostat.zombies={zombies} sample#dynostat.agent_rss=9.31MB "
        "sample#dynostat.agent_cpu=1.20ms",
    ]


def _agent_extras(day: Day, name: str, head: str, tick: int, *, state, tasks: int) -> list[str]:
    """The agent's top# lists and warnings, where something piles up."""
    zombies, threads, memory, _ = state
    lines = []
    tops = []
    if zombies:
        tops.append(f"top#zombie_parents=8/leaky_worker:{zombies}")
    if threads > 40:
        tops.append(f"top#threads=14/sidekiq:{threads - 20},15/puma:12")
    if tops:
        lines.append(f"{head} {' '.join(tops)}")
    if zombies and tasks * 100 >= 80 * 256 and tick % 3 == 0:
        lines.append(
            f"{head} at=warn event=tasks_near_limit tasks={tasks} tasks_limit=256 "
            f"pct={tasks * 100 // 256} pid=8 comm=leaky_worker zombies={zombies}"
        )
    if name == day.memory_dyno and memory > 0.9 * 512 and tick % 3 == 0:
        lines.append(
            f"{head} at=warn event=memory_near_quota memory_total={memory:.2f}MB "
            f"memory_quota=512.00MB pct={int(memory / 5.12)} pid=11 "
            f'comm="puma: cluster worker 0" rss={memory - 40:.2f}MB'
        )
    if name == day.thread_dyno and tick > day.ticks // 2 and tick % 60 == 0:
        lines.append(
            f"{head} at=warn event=threads_rising threads={threads - 20} from=2 "
            "rises=3 pid=14 comm=sidekiq"
        )
    return lines


def _platform(day: Day, name: str, when: float, tick: int, *, memory: float, dyno_id: str):
    """Heroku's own lines: R14/R15, runtime metrics, the crashes."""
    lines = []
    heroku = f"{_stamp(when + 3)} heroku[{name}]:"
    if name == day.memory_dyno and memory > 512 and tick % 2 == 0:
        code = (
            "R15 (Memory quota vastly exceeded)" if memory > 620 else "R14 (Memory quota exceeded)"
        )
        lines.append(f"{heroku} Process running mem={memory:.0f}M({memory / 5.12:.1f}%)")
        lines.append(f"{heroku} Error {code}")
    if name in day.runtime_metrics and tick % 3 == 0:
        lines.append(
            f"{_stamp(when + 1)} heroku[{name}]: source={name} "
            f"dyno=heroku.2808254.{dyno_id} sample#memory_total={memory:.2f}MB "
            f"sample#memory_rss={memory - 9:.2f}MB sample#memory_cache=9.00MB "
            "sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages "
            "sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB"
        )
    if name == day.zombie_dyno and tick in (day.crash_zombie - 1, day.crash_zombie):
        lines.append(
            f"{_stamp(when + 5)} app[{name}]: leaky_worker[8]: fork failed: "
            "EAGAIN (Resource temporarily unavailable)"
        )
    crashed = (name == day.zombie_dyno and tick == day.crash_zombie) or (
        name == day.memory_dyno and tick == day.crash_memory
    )
    if crashed:
        heroku = f"{_stamp(when + 9)} heroku[{name}]:"
        lines.append(f"{heroku} Process exited with status 137")
        lines.append(f"{heroku} State changed from up to crashed")
    return lines


def _router(day: Day, name: str, index: int, when: float, tick: int) -> list[str]:
    """One request to a web dyno per tick, and a second one a quarter of the time."""
    rng = day.rng
    lines = []
    exhausted = name == day.zombie_dyno and day.leak[1] - 3 <= tick <= day.crash_zombie
    for request in range(1 + (rng.random() < 0.25)):
        service = 30000 if exhausted else int(20 + rng.expovariate(1 / 60))
        if exhausted:
            status = 'at=error code=H12 desc="Request timeout"'
        elif rng.random() < 0.0005:
            status = 'at=error code=H13 desc="Connection closed without response"'
        else:
            status = "at=info"
        lines.append(
            f"{_stamp(when + 7.2 + request * 4.1)} heroku[router]: {status} method=GET "
            f'path="/api/orders/{rng.randint(1, 9999)}" host=myapp.herokuapp.com '
            f"request_id={rng.getrandbits(64):016x} "
            f'fwd="203.0.113.{index}" dyno={name} connect=0ms '
            f"service={service}ms status={503 if exhausted else 200} "
            "bytes=2048 protocol=https"
        )
    return lines


def generate(path: Path, dynos: int, hours: float, seed: int = 42) -> int:
    """Writes the log; returns its number of lines."""
    day = Day(dynos, hours, seed)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for tick in range(day.ticks):
            base = START + tick * INTERVAL
            for index, name in enumerate(day.names):
                when = base + index * 0.013
                dyno_id = f"{index:04x}c1e-{name}"
                state = day.state(name, tick)
                zombies, _, memory, down = state
                if down:
                    continue
                head = f"{_stamp(when)} app[{name}]: source={name} dyno={dyno_id}"
                load = 0.3 + day.rng.random() * 0.4 + zombies / 80
                tasks, lines = _metrics(head, tick, state, load)
                lines += _agent_extras(day, name, head, tick, state=state, tasks=tasks)
                lines += _platform(day, name, when, tick, memory=memory, dyno_id=dyno_id)
                if name.startswith("web."):
                    lines += _router(day, name, index, when, tick)
                out.write("\n".join(lines) + "\n")
                count += len(lines)
        # A day of an app has a release or two.
        out.write(
            f"{_stamp(START + 3600 * hours * 0.25)} app[api]: Release v311 created by "
            "user ops@example.com\n"
        )
    return count + 1


def run_report(log: Path, workdir: Path) -> tuple[float, float, Path]:
    """One run of the command: wall seconds, peak RSS MB of the child, the page's path."""
    command = shutil.which("dynostat-report") or ""
    argv = [command] if command else [sys.executable, "-m", "dynostat_report"]
    page = workdir / "report.html"
    started = time.perf_counter()
    child = subprocess.Popen(
        [*argv, str(log), "-o", str(page), "--json", str(workdir / "summary.json"), "-q"],
        env={**os.environ, "PYTHONPATH": str(REPO / "report")},
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"dynostat-report failed with {child.returncode}")
    return elapsed, usage.ru_maxrss / 1024, page


def browser_figures(page: Path) -> dict:
    """Load, draw-all and zoom times of the page in Chromium with the network off."""
    from playwright.sync_api import sync_playwright

    figures = {}
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=shutil.which("chromium") or CHROMIUM,
            args=offline_args(),
            viewport={"width": 1400, "height": 1000},
            offline=True,
        )
        tab = browser.new_page()
        errors = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        started = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_function(
            "window.dynostatReport && window.dynostatReport.firstChartsReady", timeout=120_000
        )
        figures["load_s"] = time.perf_counter() - started
        figures["ready_in_page_ms"] = tab.evaluate("window.dynostatReport.readyAt")
        started = time.perf_counter()
        drawn = tab.evaluate("window.dynostatReport.renderAll()")
        figures["draw_all_s"] = time.perf_counter() - started
        figures["charts"] = drawn
        # A zoom as a user makes it, on the second dyno's chart, with that chart on screen:
        # the time until every chart on screen shows the new range (the others follow when
        # they are scrolled to).
        tab.evaluate("document.querySelectorAll('.js-plotly-plot')[2].scrollIntoView()")
        figures["zoom_ms"] = tab.evaluate(
            """() => new Promise((resolve) => {
                const charts = Array.from(document.querySelectorAll('.js-plotly-plot'));
                const chart = charts[2];
                const range = chart.layout.xaxis.range.map((v) => new Date(v).getTime());
                const target = [range[0] + (range[1] - range[0]) * 0.7, range[1]];
                const visible = charts.filter((c) => {
                    const box = c.getBoundingClientRect();
                    return box.bottom > 0 && box.top < window.innerHeight;
                });
                const started = performance.now();
                Plotly.relayout(chart, {'xaxis.range': target}).then(() => {
                    const done = () => visible.every((c) =>
                        Math.abs(new Date(c.layout.xaxis.range[0]).getTime() - target[0]) < 1000);
                    const wait = () => done() ? resolve(performance.now() - started)
                                               : setTimeout(wait, 5);
                    wait();
                });
            })"""
        )
        figures["js_heap_mb"] = tab.evaluate("performance.memory.usedJSHeapSize") / 2**20
        figures["errors"] = errors
        browser.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dynos", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"heroku-{args.dynos}x{args.hours:g}h.log"
    if not log.exists():
        started = time.perf_counter()
        lines = generate(log, args.dynos, args.hours)
        print(
            f"wrote {log.name}: {lines:,} lines, {log.stat().st_size / 2**20:.0f} MB "
            f"in {time.perf_counter() - started:.1f} s"
        )
    else:
        with log.open("rb") as stream:
            lines = sum(1 for _ in stream)
        print(f"reusing {log.name}: {lines:,} lines, {log.stat().st_size / 2**20:.0f} MB")

    walls, peaks = [], []
    page = None
    load_before = os.getloadavg()[0]
    for number in range(args.runs):
        wall, peak_mb, page = run_report(log, OUT)
        walls.append(wall)
        peaks.append(peak_mb)
        print(f"run {number + 1}: {wall:.2f} s, peak RSS {peak_mb:.0f} MB")
    print(f"load average of the machine: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print()
    print("| lines | dynos | median wall s | min-max s | peak RSS MB | page MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {lines:,} | {args.dynos} | {statistics.median(walls):.2f} | "
        f"{min(walls):.2f}-{max(walls):.2f} | {max(peaks):.0f} | "
        f"{page.stat().st_size / 2**20:.1f} |"
    )
    if args.no_browser:
        return
    figures = browser_figures(page)
    print()
    print(
        "| page load to first charts s | in-page ready ms | draw all charts s | charts | "
        "zoom, charts on screen ms | JS heap MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {figures['load_s']:.2f} | {figures['ready_in_page_ms']:.0f} | "
        f"{figures['draw_all_s']:.2f} | {figures['charts']} | {figures['zoom_ms']:.0f} | "
        f"{figures['js_heap_mb']:.0f} |"
    )
    if figures["errors"]:
        print(f"console errors: {figures['errors']}")


if __name__ == "__main__":
    main()
