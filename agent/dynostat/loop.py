"""The agent's one loop: a sample every interval on a monotonic deadline, on one thread.

Schedule: deadlines sit on a fixed grid (start, start + interval, ...). After each tick the
loop sleeps until the next deadline, so the time a tick takes does not push later samples
back (no drift). A tick that overruns one or more deadlines skips them instead of firing
them back to back (no burst). The first sample is taken at start.

Signals: SIGTERM and SIGINT ask the loop to stop. The sleep is a ``select`` on a pipe that
Python's C-level signal handler writes to (``signal.set_wakeup_fd``), so a signal ends the
sleep at once; the loop then takes one last sample, prints it and returns. A signal that
arrives during a tick lets the tick's sampling and printing finish, cuts a push short, and
is answered with one more sample taken after it. The last lines wait at most half a second
for a stalled log reader (see ``logwriter``), so the agent is gone within a second of the
signal. SIGHUP is ignored. SIGPIPE stays ignored so that a closed stdout shows up as EPIPE,
which ends the agent quietly.

A tick never lets an error out: it prints one ``at=error`` line and the next tick runs as
usual. Error lines are rate-limited per identical text, so an error that repeats every tick
prints once a minute, with ``repeated=N`` saying how many were held back.
"""

from __future__ import annotations

import os
import select
import time

from dynostat import logfmt
from dynostat.alerts import Alerts
from dynostat.logwriter import LineWriter, OutputClosed
from dynostat.output import Formatter
from dynostat.ratelimit import WARN_EVERY_S, RateLimiter
from dynostat.sample import Sample
from dynostat.selfcost import SelfCost

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read these
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Mapping


# The C module under ``signal``: the same functions and constants, without the IntEnum
# wrappers: ``import signal`` costs the agent about 1.2 MB of its 10 MB budget, nearly all of
# it enum.
try:
    import _signal as signal
except ImportError:  # an interpreter without CPython's private module
    import signal  # type: ignore[no-redef]


class StopRequested(BaseException):
    """Raised by the signal handler inside a section that may block for long (a push).

    A BaseException, so that code that guards itself with ``except Exception`` (the sink,
    which must never raise) does not swallow the request to stop.
    """


def describe(exc: BaseException) -> str:
    """``ExcType: message`` for an error line: enough to act on, never a traceback."""
    message = str(exc)
    name = type(exc).__name__
    return logfmt.clip(f"{name}: {message}" if message else name)


class Signals:
    """SIGTERM/SIGINT set a flag and wake ``sleep``; SIGHUP is ignored; SIGPIPE is ignored."""

    STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
    NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}  # noqa: RUF012

    def __init__(self) -> None:
        self.requested = False
        self.interruptible = False
        self._wake_read, self._wake_write = os.pipe()  # non-inheritable (PEP 446)
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._previous: list[tuple[int, object]] = []
        self._previous_wakeup_fd = -1

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.interruptible:
            raise StopRequested(self.NAMES.get(signum, str(signum)))

    def install(self) -> None:
        for signum in self.STOP_SIGNALS:
            self._previous.append((signum, signal.signal(signum, self._handle)))
        # Heroku's dyno manager and `heroku ps:exec` sessions may send SIGHUP; it is not a
        # reason to stop sampling.
        self._previous.append((signal.SIGHUP, signal.signal(signal.SIGHUP, signal.SIG_IGN)))
        # Python ignores SIGPIPE at start-up, so writing to a closed pipe raises
        # BrokenPipeError, which ends the agent quietly with exit 0. An embedding program
        # (or a parent that reset the disposition before exec) could have put it back to the
        # default, which would kill the agent with status 141 instead; say which we mean.
        self._previous.append((signal.SIGPIPE, signal.signal(signal.SIGPIPE, signal.SIG_IGN)))
        # A full pipe only means a wake-up is already pending: nothing to warn about.
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)

    def uninstall(self) -> None:
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for signum, handler in reversed(self._previous):
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when a stop was requested (then return at once)."""
        if self.requested:
            return True
        if seconds > 0:
            # A signal that arrived just before select still left its byte in the pipe, so
            # select returns immediately: the wake-up cannot be lost.
            readable, _, _ = select.select([self._wake_read], [], [], seconds)
            if readable:
                self._drain()
        return self.requested

    def _drain(self) -> None:
        try:
            while os.read(self._wake_read, 512):
                pass
        except BlockingIOError:
            pass


# How long before the next deadline a tick's writes stop waiting for a stalled log reader.
WRITE_MARGIN_S = 0.05


class Schedule:
    """Runs ``tick`` at start and then on every interval deadline, skipping missed ones.

    ``on_deadline(t)`` is told, before each tick, the time that tick's writes must be done by
    (a little before the next deadline, so they never delay it); ``on_skipped(n)`` is told of
    deadlines a slow tick missed.
    """

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], bool] | None = None,
        stopping: Callable[[], bool] = lambda: False,
        *,
        on_deadline: Callable[[float], None] = lambda deadline: None,
        on_skipped: Callable[[int], None] = lambda missed: None,
    ):
        self.interval = interval
        self.clock = clock
        self.sleep = sleep if sleep is not None else _plain_sleep
        self.stopping = stopping
        self.on_deadline = on_deadline
        self.on_skipped = on_skipped
        self.ticks = 0

    def run(self, tick: Callable[[bool], None], count: int | None = None) -> None:
        """Tick until ``count`` ticks are done or a stop is requested.

        A stop request, whether it arrives during a sleep or during a tick, is answered with
        one more sample taken after it: ``tick(True)``, the last one.
        """
        start = self.clock()
        index = 0  # deadline = start + index * interval: exact, no accumulated rounding
        while True:
            # The tick's writes give up a little before the next deadline, so that a stalled
            # log reader costs lines, never the next sample's start.
            next_deadline = start + (index + 1) * self.interval
            self.on_deadline(next_deadline - min(self.interval / 10, WRITE_MARGIN_S))
            tick(False)
            self.ticks += 1
            if self.stopping():
                break
            if count is not None and self.ticks >= count:
                return
            index += 1
            deadline = start + index * self.interval
            now = self.clock()
            if now > deadline:
                missed = int((now - deadline) // self.interval) + 1
                index += missed
                self.on_skipped(missed)
                deadline = start + index * self.interval
            if self._sleep_until(deadline):
                break
        tick(True)
        self.ticks += 1

    def _sleep_until(self, deadline: float) -> bool:
        """Sleep to the deadline; True when woken by a stop request instead."""
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return self.stopping()
            if self.sleep(remaining) or self.stopping():
                return True


def _plain_sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class Reporter:
    """Prints event lines (warnings, errors) for the loop, the sources and the sinks.

    Every line goes through one RateLimiter: by default identical lines print once per
    ``WARN_EVERY_S``, and the next time one prints it says ``repeated=N``. A caller may name
    the ``key`` lines are counted under (one kind of failure whatever its details) and the
    period ``every`` (``ONCE``: never again).
    """

    def __init__(
        self,
        formatter: Formatter,
        writer: LineWriter,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.formatter = formatter
        self.writer = writer
        self.clock = clock
        self.limiter = RateLimiter(every=WARN_EVERY_S)

    def __call__(
        self, fields: Mapping[str, object], key: Hashable = None, every: float | None = None
    ) -> None:
        if key is None:
            key = self.formatter.event_line(fields)  # identical lines are one kind
        # A keyed line is formatted only when it prints: a failure that persists comes back
        # every tick and is held back nearly always.
        allowed, held_back = self.limiter.allow(key, self.clock(), every)
        if allowed:
            self.emit({**fields, "repeated": held_back} if held_back else fields)

    def emit(self, fields: Mapping[str, object]) -> None:
        """Print one event line that the rate limiter let through."""
        self.writer.write([self.formatter.event_line(fields)])


class TickWork:
    """One tick's work: sample, add the agent's own cost, print, warn, push."""

    def __init__(
        self,
        sampler,
        reporter: Reporter,
        *,
        alerts: Alerts,
        cost: SelfCost,
        sink=None,
        identity: tuple[str, str] = ("local", "unknown"),
        wall_clock: Callable[[], float] = time.time,
        signals: Signals | None = None,
    ):
        self.sampler = sampler
        self.reporter = reporter
        self.formatter = reporter.formatter
        self.writer = reporter.writer
        self.alerts = alerts
        self.cost = cost
        self.sink = sink
        self.source, self.dyno = identity
        self.wall_clock = wall_clock
        self.signals = signals

    def run(self, final: bool = False) -> Sample | None:
        try:
            sample = self.sampler.sample(self.wall_clock())
            self.cost.fill(sample)
            if self.sink is not None:
                sample.push_dropped = self.sink.dropped
            lines = self.formatter.sample_lines(sample)
            lines.extend(self.formatter.event_line(w) for w in self.alerts.check(sample))
        except Exception as exc:  # noqa: BLE001 -- any failure costs one line, not the agent
            self.reporter({"at": "error", "event": "tick_failed", "reason": describe(exc)})
            return None
        self.writer.write(lines)
        # The last sample before a stop is printed but not pushed: a push may block for
        # seconds, and the agent must be gone within one second of SIGTERM.
        if self.sink is not None and not final:
            self._push(sample)
        return sample

    def _push(self, sample: Sample) -> None:
        signals = self.signals
        if signals is not None:
            if signals.requested:
                return
            # A push may wait on the network for seconds: let a stop signal cut it short.
            signals.interruptible = True
        failure: Exception | None = None
        try:
            self.sink.send(sample, self.source, self.dyno)
        except StopRequested:
            return  # the push is abandoned; the loop takes the last sample next
        except Exception as exc:  # noqa: BLE001 -- a broken sink must not stop the samples
            failure = exc
        finally:
            if signals is not None:
                signals.interruptible = False
        if failure is not None:
            # Only the exception's type: an HTTP library's message quotes the URL, and the URL
            # may carry credentials.
            self.reporter({"at": "error", "event": "push_failed", "reason": type(failure).__name__})


__all__ = [
    "OutputClosed",
    "Reporter",
    "Schedule",
    "Signals",
    "StopRequested",
    "TickWork",
    "describe",
]
