"""Thinning a series for display, so spikes survive and the page stays light.

A chart is about a thousand pixels wide; 24 hours at 20 s is 4320 samples per series and 50
dynos hold hundreds of them. For display, a long series is cut into equal runs of samples
and each run keeps its lowest and highest sample, in time order: a one-sample spike to the
limit still reaches the limit on the chart. The summary never sees thinned data.

A silence (no sample for several intervals: a crashed dyno, an agent that was not running)
is kept as a break in the line instead of a straight line drawn across it.
"""

from __future__ import annotations

import itertools
import operator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# A silence is a gap longer than this many usual intervals (and at least GAP_MIN_S).
GAP_INTERVALS = 3.5
GAP_MIN_S = 90.0


def _gaps(times: Sequence[float]) -> list[float]:
    """The time between each sample and the next (computed in C: series are long)."""
    return list(map(operator.sub, itertools.islice(times, 1, None), times))


def segments(times: Sequence[float], silence_s: float | None = None) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the series between silences: gaps longer than
    ``silence_s``, or by default than a few of the series' usual intervals."""
    count = len(times)
    if count < 2:
        return [(0, count)] if count else []
    gaps = _gaps(times)
    if silence_s is None:
        usual = sorted(gaps)[len(gaps) // 2]
        threshold = max(GAP_MIN_S, GAP_INTERVALS * usual)
    else:
        threshold = silence_s
    # Index i + 1 starts a new segment when the gap before it is a silence.
    starts = [i + 1 for i in itertools.compress(range(len(gaps)), map(threshold.__lt__, gaps))]
    bounds = [0, *starts, count]
    return list(zip(bounds, bounds[1:]))


def min_max(
    times: Sequence[float], values: Sequence[float], max_points: int
) -> tuple[list[float], list[float]]:
    """At most about ``max_points`` samples: each run's lowest and highest, in time order."""
    count = len(times)
    if count <= max_points:
        return list(times), list(values)
    runs = max(1, max_points // 2)
    size = -(-count // runs)  # ceiling division: every run has `size` samples but the last
    kept_times: list[float] = []
    kept_values: list[float] = []
    for start in range(0, count, size):
        run = values[start : start + size]
        low = min(run)
        high = max(run)
        low_at = run.index(low)
        high_at = run.index(high)
        for offset in sorted({low_at, high_at}):
            kept_times.append(times[start + offset])
            kept_values.append(run[offset])
    return kept_times, kept_values


def for_display(
    times: Sequence[float],
    values: Sequence[float],
    max_points: int,
    silence_s: float | None = None,
) -> tuple[list[float | None], list[float | None]]:
    """Thinned samples with a None (a break in the line) in every silence."""
    parts = segments(times, silence_s)
    total = len(times)
    out_times: list[float | None] = []
    out_values: list[float | None] = []
    for number, (start, stop) in enumerate(parts):
        budget = max(2, max_points * (stop - start) // max(total, 1))
        part_times, part_values = min_max(times[start:stop], values[start:stop], budget)
        if number:
            # A point with no value between the two sides of a silence breaks the line.
            out_times.append((times[start - 1] + times[start]) / 2)
            out_values.append(None)
        out_times.extend(part_times)
        out_values.extend(part_values)
    return out_times, out_values


def steps(times: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """A limit that rarely changes, as the samples where it changed and the last one."""
    kept_times: list[float] = []
    kept_values: list[float] = []
    previous = None
    for time, value in zip(times, values):
        if value != previous:
            kept_times.append(time)
            kept_values.append(value)
            previous = value
    if times and (not kept_times or kept_times[-1] != times[-1]):
        kept_times.append(times[-1])
        kept_values.append(values[-1])
    return kept_times, kept_values
