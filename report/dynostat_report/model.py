"""What the report keeps of the logs: per dyno, time series and marked events.

Every metric sample is kept (two ``array('d')`` per series: 16 bytes a point), so the
summary's peaks are exact; only the page thins the series for display. Events (warnings,
error codes, crashes, restarts) are few and kept with the log line they came from.
"""

from __future__ import annotations

import itertools
import operator
from array import array

# Event kinds, which decide a marker's row, colour and whether it counts as a failure.
WARN = "warn"  # dynostat at=warn
AGENT_ERROR = "agent_error"  # dynostat at=error
INFO = "info"  # dynostat at=info (and any other level)
PLATFORM_ERROR = "platform_error"  # Heroku's Error R14 (Memory quota exceeded) and friends
ROUTER_ERROR = "router_error"  # router lines with code=H12 and friends
CRASH = "crash"  # State changed from up to crashed
RESTART = "restart"  # State changed to starting, Restarting, Cycling
LIFECYCLE = "lifecycle"  # SIGTERM/SIGKILL, Process exited, Starting process, mem=...
FORK_FAILURE = "fork_failure"  # the app said EAGAIN: no task could be created

# dynostat's own health, which says nothing about the app: not counted as warnings ahead of
# a failure.
AGENT_HEALTH_EVENTS = frozenset(
    {
        "log_backpressure",
        "proc_restricted",
        "push_failed",
        "push_unavailable",
        "config_invalid",
        "source_failed",
        "fallback_sampler",
        "lock_failed",
        "tick_failed",
        "agent_crash",
        "restart_failed",
    }
)

# Codes that say the app is not a failing dyno: maintenance mode, a blank app, no dyno hours.
NOT_DYNO_FAILURES = frozenset({"H80", "H81", "H82"})


class Series:
    """Samples of one metric: times (UTC epoch seconds) and values, in arrival order."""

    __slots__ = ("times", "unit", "values")

    def __init__(self, unit: str = "") -> None:
        self.times = array("d")
        self.values = array("d")
        self.unit = unit

    def __len__(self) -> int:
        return len(self.times)

    def sort(self) -> None:
        """Puts samples in time order: several inputs merge by time however they came.

        Repeated lines were already dropped as they were read, so nothing is dropped here.
        """
        times = self.times
        if all(map(operator.le, times, itertools.islice(times, 1, None))):
            return
        order = sorted(range(len(times)), key=times.__getitem__)
        values = self.values
        self.times = array("d", (times[i] for i in order))
        self.values = array("d", (values[i] for i in order))


class Event:
    """A marked moment: what kind, its short label (``R14``, ``tasks_near_limit``), the line."""

    __slots__ = ("comm", "kind", "label", "line", "pid", "time")

    def __init__(
        self,
        time: float,
        kind: str,
        label: str,
        line: str,
        *,
        pid: int | None = None,
        comm: str | None = None,
    ) -> None:
        self.time = time
        self.kind = kind
        self.label = label
        self.line = line
        self.pid = pid
        self.comm = comm

    def __repr__(self) -> str:
        return f"Event({self.time!r}, {self.kind!r}, {self.label!r})"

    @property
    def is_dyno_failure(self) -> bool:
        """Whether the dyno itself failed here: a Heroku error code (R10, R14, R15...), a
        crash, a process or thread that could not be created, an OOM kill."""
        if self.kind in (PLATFORM_ERROR, CRASH, FORK_FAILURE):
            return True
        return self.kind == WARN and self.label == "oom_kill"

    @property
    def is_request_failure(self) -> bool:
        """Whether a request to the dyno failed here (H10, H12, H13...): what users saw."""
        return self.kind == ROUTER_ERROR and self.label not in NOT_DYNO_FAILURES

    @property
    def is_early_warning(self) -> bool:
        """Whether this is dynostat warning about the app (not about itself or a kill)."""
        return (
            self.kind == WARN and self.label not in AGENT_HEALTH_EVENTS and self.label != "oom_kill"
        )


class RouterMinute:
    """The router's requests to one dyno in one minute: service times and count."""

    __slots__ = ("service_ms",)

    def __init__(self) -> None:
        self.service_ms = array("d")


class Dyno:
    """Everything read about one dyno (``web.1``; on Fir ``web-12a34b56d-e78f9``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dyno_ids: list[str] = []
        self.series: dict[str, Series] = {}
        # The series each kind of metric line fills, by the line's metric names, so the
        # common line (the same names every interval) costs one lookup, not one per metric.
        self.line_series: dict[tuple, list[Series]] = {}
        # Lines of a known shape not yet converted to numbers (see reader._Batch).
        self.batches: dict = {}
        self.events: list[Event] = []
        # (time, kind, value as written): top# lists, parsed only where the summary needs them.
        self.tops: list[tuple[float, str, str]] = []
        self.router: dict[int, RouterMinute] = {}
        self.router_requests = 0
        self.first = float("inf")
        self.last = float("-inf")

    def seen(self, time: float) -> None:
        self.first = min(self.first, time)
        self.last = max(self.last, time)

    def series_for(self, name: str) -> Series:
        series = self.series.get(name)
        if series is None:
            series = self.series[name] = Series()
        return series

    def add_sample(self, name: str, time: float, value: float, unit: str) -> None:
        series = self.series_for(name)
        if unit and not series.unit:
            series.unit = unit
        series.times.append(time)
        series.values.append(value)

    def add_dyno_id(self, dyno_id: str) -> None:
        # A dyno keeps its name across restarts but gets a new id each time; a few are kept
        # to tell restarts apart, not one per line.
        if dyno_id and (not self.dyno_ids or self.dyno_ids[-1] != dyno_id):
            if dyno_id not in self.dyno_ids and len(self.dyno_ids) < 20:
                self.dyno_ids.append(dyno_id)

    def add_request(self, time: float, service_ms: float | None) -> None:
        self.router_requests += 1
        if service_ms is None:
            return
        minute = int(time // 60)
        bucket = self.router.get(minute)
        if bucket is None:
            bucket = self.router[minute] = RouterMinute()
        bucket.service_ms.append(service_ms)

    @property
    def has_findings(self) -> bool:
        """Whether there is anything to show: metrics, requests, or an event that is not
        plain lifecycle (a one-off dyno that started and exited is not worth a chart)."""
        if self.series or self.router_requests:
            return True
        return any(event.kind not in (LIFECYCLE, RESTART) for event in self.events)

    def finish(self) -> None:
        """Sorts everything by time, so several inputs merge however they were ordered, and
        takes the dyno's first and last moment from what it holds (the hot path of the
        reader does not track them line by line)."""
        for series in self.series.values():
            series.sort()
            if len(series):
                self.seen(series.times[0])
                self.seen(series.times[-1])
        self.events.sort(key=lambda event: event.time)
        self.tops.sort(key=lambda top: top[0])
        for moments in (self.events, self.tops):
            if moments:
                first, last = moments[0], moments[-1]
                self.seen(first[0] if isinstance(first, tuple) else first.time)
                self.seen(last[0] if isinstance(last, tuple) else last.time)
