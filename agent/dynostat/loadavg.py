"""``<proc>/loadavg``: the run-queue averages over 1, 5 and 15 minutes (proc(5))."""

from __future__ import annotations

import math

from .procfs import MalformedError
from .sample import LoadAvg


def parse_loadavg(data: bytes) -> LoadAvg:
    """Parse ``0.12 0.10 0.05 1/123 4567``; raise MalformedError on anything else."""
    fields = data.split()
    if len(fields) < 3:
        raise MalformedError(f"expected 3 load averages, got {data[:80]!r}")
    try:
        averages = [float(field) for field in fields[:3]]
    except ValueError:
        raise MalformedError(f"load averages are not numbers: {data[:80]!r}") from None
    # float() also accepts 'nan' and 'inf', which no kernel writes and no log line should carry.
    if not all(math.isfinite(value) and value >= 0 for value in averages):
        raise MalformedError(f"load averages out of range: {data[:80]!r}")
    return LoadAvg(averages[0], averages[1], averages[2])
