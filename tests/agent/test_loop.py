"""The loop with an injected clock, sleep and stream: exact bytes, timing, errors, signals."""

from __future__ import annotations

import ast
import os
import signal
import time
from pathlib import Path

import pytest

from dynostat.alerts import Alerts
from dynostat.logwriter import LineWriter
from dynostat.loop import Reporter, Schedule, Signals, TickWork
from dynostat.output import Formatter
from dynostat.sample import Culprit, LoadAvg, Sample, Tasks
from dynostat.selfcost import SelfCost, parse_statm_rss
from support.output import CapturedOutput
from support.paths import AGENT_PACKAGE


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps or works."""

    def __init__(self, start: float = 500.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.stop_after_sleeps: int | None = None
        self.stop = False

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        if self.stop_after_sleeps is not None and len(self.sleeps) >= self.stop_after_sleeps:
            # A signal arrives part-way through this sleep.
            self.now += seconds / 2
            self.stop = True
            return True
        self.now += seconds
        return False


class FakeSampler:
    """Gives a numbered sample per call; each call 'takes' work_s[i] seconds of the clock."""

    def __init__(self, clock: FakeClock, work_s=(), fail_on=(), stop_on=None) -> None:
        self.clock = clock
        self.work_s = list(work_s)
        self.fail_on = set(fail_on)
        self.stop_on = stop_on
        self.started_at: list[float] = []

    def sample(self, wall_time: float) -> Sample:
        index = len(self.started_at)
        self.started_at.append(self.clock())
        if index < len(self.work_s):
            self.clock.now += self.work_s[index]
        if index == self.stop_on:
            self.clock.stop = True
        if index in self.fail_on:
            raise OSError(5, "Input/output error")
        return Sample(
            wall_time=wall_time,
            load=LoadAvg(index / 100, 0.5, 0.25),
            tasks=Tasks(tasks=10 + index, processes=4, threads=10 + index, zombies=0, limit=256),
            top_threads=[Culprit(42, "puma", 7)],
        )


class FixedCost:
    def fill(self, sample: Sample) -> None:
        sample.agent_rss = 8 * 1024 * 1024
        sample.agent_cpu_ms = 0.5


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[int, str, str]] = []
        self.dropped = 3
        self.fail = fail

    def send(self, sample: Sample, source: str, dyno: str) -> None:
        if self.fail:
            raise RuntimeError("sink bug")
        self.sent.append((sample.tasks.tasks, source, dyno))


def make_work(clock, sampler, sink=None, fmt="logfmt"):
    stream = CapturedOutput()
    formatter = Formatter("web.1", "d-1", fmt)
    writer = LineWriter(stream.fd, formatter.event_line, clock=clock)
    reporter = Reporter(formatter, writer, clock=clock)
    work = TickWork(
        sampler,
        reporter,
        alerts=Alerts(clock=clock),
        cost=FixedCost(),
        sink=sink,
        identity=("web.1", "d-1"),
        wall_clock=lambda: 1764219600.0 + clock() - 500.0,
    )
    return work, stream


def schedule(clock, interval=1.0):
    loop = Schedule(
        interval,
        clock=clock,
        sleep=clock.sleep,
        stopping=lambda: clock.stop,
        on_skipped=lambda missed: setattr(loop, "missed", loop.missed + missed),
    )
    loop.missed = 0  # what the schedule reported as skipped, as the log writer counts it
    return loop


def sample_block(index: int) -> bytes:
    head = "source=web.1 dyno=d-1"
    return (
        f"{head} sample#dynostat.load_avg_1m={index / 100:.2f} sample#dynostat.load_avg_5m=0.50"
        " sample#dynostat.load_avg_15m=0.25\n"
        f"{head} sample#dynostat.tasks={10 + index} sample#dynostat.tasks_limit=256"
        f" sample#dynostat.processes=4 sample#dynostat.threads={10 + index}"
        " sample#dynostat.zombies=0 sample#dynostat.agent_rss=8.00MB"
        " sample#dynostat.agent_cpu=0.50ms\n"
        f"{head} top#threads=42/puma:7\n"
    ).encode()


def test_several_ticks_print_exactly_these_bytes_on_a_fixed_grid():
    clock = FakeClock()
    sampler = FakeSampler(clock, work_s=[0.25, 0.1, 0.4])
    work, stream = make_work(clock, sampler)
    loop = schedule(clock)
    loop.run(work.run, count=3)
    assert stream.getvalue() == sample_block(0) + sample_block(1) + sample_block(2)
    assert sampler.started_at == [500.0, 501.0, 502.0]
    # It sleeps to the deadline, not a whole interval after the work.
    assert clock.sleeps == pytest.approx([0.75, 0.9])
    assert (loop.ticks, loop.missed) == (3, 0)


def test_the_first_sample_is_taken_at_start_and_count_stops_without_a_last_sleep():
    clock = FakeClock()
    work, stream = make_work(clock, FakeSampler(clock))
    schedule(clock, interval=20.0).run(work.run, count=1)
    assert stream.getvalue() == sample_block(0)
    assert clock.sleeps == []


def test_slow_ticks_do_not_drift_the_schedule():
    clock = FakeClock()
    sampler = FakeSampler(clock, work_s=[0.3] * 50)
    work, _ = make_work(clock, sampler)
    schedule(clock, interval=0.1 * 7).run(work.run, count=50)
    # After fifty ticks the last one still starts on the grid, to the float's precision.
    assert sampler.started_at[-1] - 500.0 == pytest.approx(49 * 0.7, abs=1e-9)
    gaps = {round(b - a, 9) for a, b in zip(sampler.started_at, sampler.started_at[1:])}
    assert gaps == {0.7}


def test_a_tick_that_overruns_skips_the_missed_deadlines_instead_of_bursting():
    clock = FakeClock()
    sampler = FakeSampler(clock, work_s=[0.2, 2.5, 0.2, 1.0])
    work, stream = make_work(clock, sampler)
    loop = schedule(clock)
    loop.run(work.run, count=5)
    assert sampler.started_at == [500.0, 501.0, 504.0, 505.0, 506.0]
    assert loop.missed == 2
    # The tick at 505 ends exactly on the next deadline, which then runs at once: no sleep.
    assert clock.sleeps == pytest.approx([0.8, 0.5, 0.8])
    assert stream.getvalue().count(b"load_avg_1m") == 5


def test_a_stop_during_the_sleep_prints_the_current_sample_and_returns():
    clock = FakeClock()
    clock.stop_after_sleeps = 2
    sampler = FakeSampler(clock)
    work, stream = make_work(clock, sampler)
    loop = schedule(clock, interval=20.0)
    loop.run(work.run)
    assert sampler.started_at == [500.0, 520.0, 530.0]
    assert stream.getvalue() == sample_block(0) + sample_block(1) + sample_block(2)
    assert loop.ticks == 3


def test_a_stop_during_a_tick_lets_that_tick_finish_and_takes_one_last_sample_after_it():
    clock = FakeClock()
    sampler = FakeSampler(clock, stop_on=1)
    work, stream = make_work(clock, sampler)
    loop = schedule(clock)
    loop.run(work.run)
    assert stream.getvalue() == sample_block(0) + sample_block(1) + sample_block(2)
    # The last sample is taken at once, not at the next deadline.
    assert sampler.started_at == [500.0, 501.0, 501.0]
    assert loop.ticks == 3


def test_an_error_inside_a_tick_prints_one_line_and_the_next_tick_runs_as_usual():
    clock = FakeClock()
    work, stream = make_work(clock, FakeSampler(clock, fail_on={1}))
    schedule(clock).run(work.run, count=3)
    assert stream.getvalue() == (
        sample_block(0) + b"source=web.1 dyno=d-1 at=error event=tick_failed"
        b' reason="OSError: [Errno 5] Input/output error"\n' + sample_block(2)
    )


def test_an_error_that_repeats_every_tick_prints_once_a_minute_with_a_count():
    clock = FakeClock()
    work, stream = make_work(clock, FakeSampler(clock, fail_on=set(range(1000))))
    schedule(clock, interval=1.0).run(work.run, count=150)
    lines = stream.getvalue().decode().splitlines()
    reason = ' reason="OSError: [Errno 5] Input/output error"'
    head = "source=web.1 dyno=d-1 at=error event=tick_failed"
    assert lines == [head + reason, head + reason + " repeated=59", head + reason + " repeated=59"]


def test_sources_report_through_the_same_rate_limited_lines():
    clock = FakeClock()
    work, stream = make_work(clock, FakeSampler(clock))
    for _ in range(3):
        work.reporter({"at": "error", "event": "source_unreadable", "path": "/proc/x y"})
    assert stream.getvalue() == (
        b'source=web.1 dyno=d-1 at=error event=source_unreadable path="/proc/x y"\n'
    )


def test_warnings_follow_their_sample():
    clock = FakeClock()

    class Crowded(FakeSampler):
        def sample(self, wall_time):
            sample = super().sample(wall_time)
            sample.tasks = Tasks(tasks=250, processes=10, threads=250, zombies=0, limit=256)
            return sample

    work, stream = make_work(clock, Crowded(clock))
    schedule(clock).run(work.run, count=2)
    lines = stream.getvalue().decode().splitlines()
    assert len(lines) == 3 + 1 + 3  # the warning only once: the minute has not passed
    assert lines[3] == (
        "source=web.1 dyno=d-1 at=warn event=tasks_near_limit tasks=250 tasks_limit=256 pct=97"
        " pid=42 comm=puma threads=7"
    )


def test_the_sink_gets_each_sample_after_it_is_printed_and_its_drop_count_is_shown():
    clock = FakeClock()
    sink = FakeSink()
    work, stream = make_work(clock, FakeSampler(clock), sink=sink)
    schedule(clock).run(work.run, count=2)
    assert sink.sent == [(10, "web.1", "d-1"), (11, "web.1", "d-1")]
    assert stream.getvalue().count(b"sample#dynostat.push_dropped=3\n") == 2


def test_a_failing_sink_costs_one_line_not_the_samples():
    clock = FakeClock()
    work, stream = make_work(clock, FakeSampler(clock), sink=FakeSink(fail=True))
    schedule(clock).run(work.run, count=2)
    text = stream.getvalue().decode()
    assert text.count("load_avg_1m") == 2
    assert text.count("event=push_failed reason=RuntimeError\n") == 1
    assert "sink bug" not in text  # a message may quote a URL with credentials in it


def test_the_last_sample_before_a_stop_is_printed_but_not_pushed():
    clock = FakeClock()
    clock.stop_after_sleeps = 1
    sink = FakeSink()
    work, stream = make_work(clock, FakeSampler(clock), sink=sink)
    schedule(clock).run(work.run)
    assert stream.getvalue().count(b"load_avg_1m") == 2
    assert [tasks for tasks, _, _ in sink.sent] == [10]


# -- real signals -------------------------------------------------------------------------------


@pytest.fixture
def signals():
    installed = Signals()
    installed.install()
    yield installed
    installed.uninstall()


def test_sigterm_ends_the_real_sleep_at_once(signals):
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    assert signals.sleep(5.0) is True
    assert time.monotonic() - started < 1.0


def test_sigint_stops_too_and_raises_no_keyboard_interrupt(signals):
    os.kill(os.getpid(), signal.SIGINT)
    assert signals.sleep(5.0) is True


def test_sighup_is_ignored_and_the_sleep_runs_its_course(signals):
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGHUP)
    assert signals.sleep(0.2) is False
    assert time.monotonic() - started >= 0.2
    assert signals.requested is False


class HangingSink:
    """A push that waits ten seconds on the network, and swallows what it can."""

    dropped = 0

    def send(self, sample, source, dyno):
        try:
            time.sleep(10)
        except Exception:  # noqa: BLE001 -- what a careless sink does
            pass


def sigterm_after(seconds: float):
    """Send this process SIGTERM once ``seconds`` have passed; returns the undo."""
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def undo():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return undo


def test_a_blocking_push_is_cut_short_by_a_stop_signal(signals):
    clock = FakeClock()
    work, _ = make_work(clock, FakeSampler(clock), sink=HangingSink())
    work.signals = signals
    undo = sigterm_after(0.1)
    try:
        started = time.monotonic()
        work.run()
        assert time.monotonic() - started < 1.0
    finally:
        undo()
    assert signals.requested is True


def test_a_sigterm_during_a_push_is_answered_with_a_last_sample_within_a_second(signals):
    stream = CapturedOutput()
    formatter = Formatter("web.1", "d-1")
    writer = LineWriter(stream.fd, formatter.event_line, stop=signals)
    reporter = Reporter(formatter, writer)
    taken_at: list[float] = []

    class TimedSampler(FakeSampler):
        def sample(self, wall_time):
            taken_at.append(time.monotonic())
            return super().sample(wall_time)

    work = TickWork(
        TimedSampler(FakeClock()),
        reporter,
        alerts=Alerts(),
        cost=FixedCost(),
        sink=HangingSink(),
        identity=("web.1", "d-1"),
        signals=signals,
    )
    loop = Schedule(20.0, sleep=signals.sleep, stopping=lambda: signals.requested)
    undo = sigterm_after(0.2)
    try:
        started = time.monotonic()
        loop.run(work.run)
        finished = time.monotonic()
    finally:
        undo()
    assert finished - started < 1.0
    assert len(taken_at) == 2
    assert taken_at[1] - started >= 0.2  # taken after the signal, not before it
    lines = stream.lines()
    assert [line for line in lines if "sample#dynostat.tasks=" in line] == [
        block.splitlines()[1].decode() + " sample#dynostat.push_dropped=0"
        for block in (sample_block(0), sample_block(1))
    ]


def test_uninstall_puts_the_previous_handlers_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    installed = Signals()
    installed.install()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    installed.uninstall()
    assert {s: signal.getsignal(s) for s in before} == before


# -- what the agent may import -----------------------------------------------------------------

FORBIDDEN_MODULES = {
    "subprocess",
    "threading",
    "_thread",
    "multiprocessing",
    "concurrent",
    "asyncio",
}
FORBIDDEN_OS_CALLS = {
    "fork",
    "forkpty",
    "system",
    "popen",
    "spawnv",
    "spawnl",
    "spawnlp",
    "spawnvp",
    "posix_spawn",
    "posix_spawnp",
}


def forbidden_uses(source: str) -> list[str]:
    """Imports of modules that start threads or processes, and os calls that start processes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "__import__":
                names = [getattr(arg, "value", "") for arg in node.args[:1]]
        found.extend(name for name in names if name.split(".")[0] in FORBIDDEN_MODULES)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in FORBIDDEN_OS_CALLS
        ):
            found.append(f"os.{node.attr}")
    return found


def test_no_agent_module_imports_subprocess_threading_or_starts_a_process():
    modules = sorted(AGENT_PACKAGE.rglob("*.py"))
    assert len(modules) >= 9
    offenders = {
        str(path.relative_to(AGENT_PACKAGE)): uses
        for path in modules
        if (uses := forbidden_uses(path.read_text()))
    }
    assert offenders == {}


def test_the_import_check_catches_each_kind_of_offender():
    bad = (
        "import threading\n"
        "from subprocess import run\n"
        "import concurrent.futures\n"
        "__import__('multiprocessing')\n"
        "import os\n"
        "os.fork()\n"
        "os.posix_spawn('x', [], {})\n"
        "from .subprocess import fine  # a relative module of the same name is ours\n"
    )
    assert forbidden_uses(bad) == [
        "threading",
        "subprocess",
        "concurrent.futures",
        "multiprocessing",
        "os.fork",
        "os.posix_spawn",
    ]


# -- the agent's own cost ---------------------------------------------------------------------


def vm_rss_bytes() -> int:
    """This process's resident memory from /proc/self/status, a different file than statm."""
    for line in Path("/proc/self/status").read_bytes().splitlines():
        if line.startswith(b"VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def test_agent_rss_is_this_process_s_resident_memory():
    cost = SelfCost()
    before, measured, after = vm_rss_bytes(), cost.rss(), vm_rss_bytes()
    assert measured is not None
    # statm and status are read a moment apart; allow a few pages of movement between them.
    assert min(before, after) - 64 * 1024 <= measured <= max(before, after) + 64 * 1024


def test_agent_rss_is_left_out_where_there_is_no_proc(tmp_path):
    assert SelfCost(statm_path=str(tmp_path / "missing")).rss() is None
    assert parse_statm_rss(b"garbage", 4096) is None
    assert parse_statm_rss(b"3436 1937 1293 691 0 1171 0\n", 4096) == 1937 * 4096


def test_agent_cpu_is_the_cpu_used_since_the_previous_sample():
    # The process's CPU clock in seconds, as each sample reads it: start-up, 50 ms of work,
    # an idle interval, a tenth of a millisecond, then a reading a step behind the last one.
    readings = iter([0.75, 0.8, 0.8, 0.8001, 0.8])
    cost = SelfCost(cpu_seconds=lambda: next(readings))
    assert cost.cpu_ms() == pytest.approx(750.0)  # the first counts from the process's start
    assert cost.cpu_ms() == pytest.approx(50.0)
    assert cost.cpu_ms() == 0.0
    assert cost.cpu_ms() == pytest.approx(0.1)
    assert cost.cpu_ms() == 0.0  # never negative


def test_agent_cpu_is_read_from_this_process_s_own_cpu_clock():
    # os.times() counts the same CPU time in clock ticks: the reading lies within a tick or
    # two of it, taken just before and just after.
    tick = 1 / os.sysconf("SC_CLK_TCK")
    before = os.times()
    used_ms = SelfCost().cpu_ms()
    after = os.times()
    low = before.user + before.system - 2 * tick
    high = after.user + after.system + 2 * tick
    assert low * 1000 <= used_ms <= high * 1000


def test_fill_puts_both_figures_on_the_sample():
    seconds = iter([1.0, 1.0025])
    cost = SelfCost(cpu_seconds=lambda: next(seconds))
    cost.cpu_ms()
    sample = Sample(wall_time=0.0)
    cost.fill(sample)
    assert sample.agent_cpu_ms == pytest.approx(2.5)
    assert sample.agent_rss is not None and sample.agent_rss > 1024 * 1024


def test_the_running_cpu_total_is_what_the_per_sample_figures_add_up_to():
    # A clock that steps back once (as a CPU clock read on another core may by a hair): the
    # total a push carries as a counter must never go down.
    seconds = iter([0.25, 0.2625, 0.2600, 0.3])
    cost = SelfCost(cpu_seconds=lambda: next(seconds))
    samples = [Sample(wall_time=float(tick)) for tick in range(4)]
    for sample in samples:
        cost.fill(sample)
    figures = [sample.agent_cpu_ms for sample in samples]
    totals = [sample.agent_cpu_seconds for sample in samples]
    assert figures == pytest.approx([250.0, 12.5, 0.0, 37.5])
    assert totals == pytest.approx([0.25, 0.2625, 0.2625, 0.3])
    assert totals == sorted(totals)
    assert sum(figures) / 1000 == pytest.approx(totals[-1])
