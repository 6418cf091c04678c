"""The summary: per dyno, how close it came to its limits, what failed, and who was to blame.

Every number here is computed from every sample read (nothing is thinned), so a script can
trust ``peak_tasks`` to be the highest ``tasks`` any line of the input reported. A value
that the input does not give is null, never 0.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from datetime import datetime, timezone

from dynostat_report import __version__
from dynostat_report.logfmt import top_entries
from dynostat_report.model import (
    AGENT_ERROR,
    CRASH,
    FORK_FAILURE,
    LIFECYCLE,
    PLATFORM_ERROR,
    RESTART,
    ROUTER_ERROR,
    WARN,
    Dyno,
    Event,
    Series,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dynostat_report.reader import Reader

MAX_CULPRITS = 10
# A top# list belongs to a peak when it was logged this close to the peak's sample.
TOP_NEAR_PEAK_S = 30.0


def iso(time: float | None) -> str | None:
    """UTC epoch seconds as ``2026-11-27T05:27:22.035Z``."""
    if time is None or not math.isfinite(time):
        return None
    moment = datetime.fromtimestamp(time, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summarize(reader: Reader) -> dict:
    """The whole summary, dynos ordered by how close they came to a limit (closest first)."""
    dynos = [dyno_summary(dyno) for dyno in reader.dynos.values() if dyno.has_findings]
    dynos.sort(key=_urgency)
    unattributed = Counter(event.label for event in reader.unattributed.events)
    return {
        "version": __version__,
        "first": iso(reader.first),
        "last": iso(reader.last),
        "lines": reader.lines,
        "skipped_lines": sum(reader.skipped.values()),
        "skipped": dict(reader.skipped.most_common()),
        "other_lines": reader.other_lines,
        "duplicate_lines": reader.duplicate_lines,
        "notes": list(reader.notes),
        "dynos": {summary.pop("dyno"): summary for summary in dynos},
        "unattributed_errors": dict(unattributed.most_common()),
        "releases": [
            {"at": iso(release.time), "label": release.label, "line": release.line}
            for release in reader.releases
        ],
    }


def _urgency(summary: dict) -> tuple:
    closest = summary["closest_to_limit_pct"]
    failures = sum(summary["errors"].values()) + summary["crashes"] + summary["fork_failures"]
    return (-(closest if closest is not None else -1.0), -failures, summary["dyno"])


def peak(series: Series | None) -> tuple[float | None, float | None]:
    """The highest value and the time it was first reached, or (None, None)."""
    if series is None or not len(series):
        return None, None
    values = series.values
    highest = max(values)
    return highest, series.times[values.index(highest)]


def value_at(series: Series | None, time: float | None) -> float | None:
    """The series' value in force at ``time``: the last one at or before it, else the first."""
    if series is None or not len(series):
        return None
    if time is None:
        return series.values[-1]
    index = bisect.bisect_right(series.times, time) - 1
    return series.values[max(index, 0)]


def _pct(value: float | None, limit: float | None) -> float | None:
    if value is None or not limit or limit <= 0:
        return None
    return round(value * 100.0 / limit, 1)


def _number(value: float | None) -> float | int | None:
    """A value for JSON: whole numbers as ints, others with two decimals."""
    if value is None:
        return None
    if float(value).is_integer():
        return int(value)
    return round(value, 2)


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ordered list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _top_near(dyno: Dyno, time: float | None) -> dict[str, list[dict]]:
    """The ``top#`` lists logged closest to ``time`` (within TOP_NEAR_PEAK_S), by kind."""
    if time is None or not dyno.tops:
        return {}
    times = [top[0] for top in dyno.tops]
    start = bisect.bisect_left(times, time - TOP_NEAR_PEAK_S)
    stop = bisect.bisect_right(times, time + TOP_NEAR_PEAK_S)
    best: dict[str, tuple[float, str]] = {}
    for when, kind, value in dyno.tops[start:stop]:
        distance = abs(when - time)
        if kind not in best or distance < best[kind][0]:
            best[kind] = (distance, value)
    found = {}
    for kind, (_, value) in sorted(best.items()):
        entries = [
            {"pid": entry.pid, "comm": entry.comm, "value": _number(entry.value)}
            | ({"unit": entry.unit} if entry.unit else {})
            for entry in top_entries(value)
        ]
        if entries:
            found[kind] = entries
    return found


def _longest_gap(series: Series | None) -> tuple[float | None, float | None]:
    """The longest silence between two samples, and when it began."""
    if series is None or len(series) < 2:
        return None, None
    times = series.times
    gap, at = max((times[i + 1] - times[i], times[i]) for i in range(len(times) - 1))
    return gap, at


def _interval(series: Series | None) -> float | None:
    """The usual time between samples (the median gap), to tell a silence from a tick."""
    if series is None or len(series) < 3:
        return None
    times = series.times
    gaps = sorted(times[i + 1] - times[i] for i in range(len(times) - 1))
    return gaps[len(gaps) // 2]


def first_failure_of(dyno: Dyno) -> Event | None:
    """The moment the dyno failed: its first own failure (a crash, R14, EAGAIN, an OOM kill);
    for a dyno that never failed itself, its first failed request (H12...). A request that
    failed now and then hours before the dyno did is not the failure a warning is for."""
    own = next((event for event in dyno.events if event.is_dyno_failure), None)
    if own is not None:
        return own
    return next((event for event in dyno.events if event.is_request_failure), None)


def dyno_summary(dyno: Dyno) -> dict:
    """One dyno's summary (with its name under ``dyno``, popped by the caller)."""
    series = dyno.series
    peak_tasks, peak_tasks_at = peak(series.get("tasks"))
    tasks_limit = value_at(series.get("tasks_limit"), peak_tasks_at)

    peak_memory, peak_memory_at, memory_quota = None, None, None
    for origin in ("", "heroku:"):
        highest, at = peak(series.get(origin + "memory_total"))
        if highest is not None and (peak_memory is None or highest > peak_memory):
            peak_memory, peak_memory_at = highest, at
            memory_quota = value_at(series.get(origin + "memory_quota"), at)

    tasks_pct = _pct(peak_tasks, tasks_limit)
    memory_pct = _pct(peak_memory, memory_quota)
    closest = max((pct for pct in (tasks_pct, memory_pct) if pct is not None), default=None)

    events = dyno.events
    errors = Counter(e.label for e in events if e.kind in (PLATFORM_ERROR, ROUTER_ERROR))
    warnings = Counter(e.label for e in events if e.kind == WARN)
    agent_errors = Counter(e.label for e in events if e.kind == AGENT_ERROR)
    exits = Counter(e.label[5:] for e in events if e.kind == LIFECYCLE and e.label[:5] == "exit ")

    culprits: dict[tuple[int, str, str], dict] = {}
    for event in events:
        if event.pid is None or event.comm is None:
            continue
        key = (event.pid, event.comm, event.label)
        if key in culprits:
            culprits[key]["count"] += 1
        elif len(culprits) < MAX_CULPRITS:
            culprits[key] = {
                "pid": event.pid,
                "comm": event.comm,
                "event": event.label,
                "count": 1,
                "first": iso(event.time),
            }

    first_warning = next((e for e in events if e.is_early_warning), None)
    first_failure = first_failure_of(dyno)
    lead = None
    if first_warning is not None and first_failure is not None:
        lead = round(first_failure.time - first_warning.time, 1)

    busiest = max(
        (s for name, s in series.items() if not name.startswith("heroku:")),
        key=len,
        default=None,
    )
    gap, gap_at = _longest_gap(busiest)

    router = None
    if dyno.router_requests:
        service = sorted(v for minute in dyno.router.values() for v in minute.service_ms)
        router = {
            "requests": dyno.router_requests,
            "service_p50_ms": _number(percentile(service, 0.5)) if service else None,
            "service_p95_ms": _number(percentile(service, 0.95)) if service else None,
            "service_max_ms": _number(service[-1]) if service else None,
        }

    metrics = {}
    for name in sorted(series):
        one = series[name]
        if not len(one):
            continue
        metrics[name] = {
            "peak": _number(max(one.values)),
            "last": _number(one.values[-1]),
            "samples": len(one),
        } | ({"unit": one.unit} if one.unit else {})

    return {
        "dyno": dyno.name,
        "dyno_ids": list(dyno.dyno_ids),
        "first": iso(dyno.first),
        "last": iso(dyno.last),
        "closest_to_limit_pct": closest,
        "peak_tasks": _number(peak_tasks),
        "peak_tasks_at": iso(peak_tasks_at),
        "tasks_limit": _number(tasks_limit),
        "peak_tasks_pct": tasks_pct,
        "peak_zombies": _number(peak(series.get("zombies"))[0]),
        "peak_threads": _number(peak(series.get("threads"))[0]),
        "peak_processes": _number(peak(series.get("processes"))[0]),
        "peak_memory_mb": _number(peak_memory),
        "peak_memory_at": iso(peak_memory_at),
        "memory_quota_mb": _number(memory_quota),
        "peak_memory_pct": memory_pct,
        "peak_swap_mb": _number(
            max(
                (
                    value
                    for value in (
                        peak(series.get("memory_swap"))[0],
                        peak(series.get("heroku:memory_swap"))[0],
                    )
                    if value is not None
                ),
                default=None,
            )
        ),
        "peak_load_1m": _number(
            peak(series.get("load_avg_1m") or series.get("heroku:load_avg_1m"))[0]
        ),
        "errors": dict(errors.most_common()),
        "warnings": dict(warnings.most_common()),
        "agent_errors": dict(agent_errors.most_common()),
        "crashes": sum(1 for e in events if e.kind == CRASH),
        "restarts": sum(1 for e in events if e.kind == RESTART),
        "exits": dict(exits.most_common()),
        "fork_failures": sum(1 for e in events if e.kind == FORK_FAILURE),
        "culprits": list(culprits.values()),
        "top_at_peak_tasks": _top_near(dyno, peak_tasks_at),
        "top_at_peak_memory": _top_near(dyno, peak_memory_at),
        "first_warning": None
        if first_warning is None
        else {
            "at": iso(first_warning.time),
            "event": first_warning.label,
            "pid": first_warning.pid,
            "comm": first_warning.comm,
        },
        "first_failure": None
        if first_failure is None
        else {"at": iso(first_failure.time), "what": first_failure.label},
        "warning_lead_s": lead,
        "interval_s": _number(_interval(busiest)),
        "longest_gap_s": _number(gap),
        "longest_gap_at": iso(gap_at),
        "router": router,
        "metrics": metrics,
    }
