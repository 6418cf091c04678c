"""The agent's own cost, printed every interval so users see what it takes from their dyno.

Always read from the real ``/proc/self``, never from ``--proc-root``: a captured tree says
nothing about the process running now.
"""

from __future__ import annotations

import os
import time

from dynostat.procfs import PAGE_SIZE
from dynostat.sample import Sample

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read it
if TYPE_CHECKING:
    from collections.abc import Callable

STATM_PATH = "/proc/self/statm"


def parse_statm_rss(text: bytes, page_bytes: int) -> int | None:
    """Resident bytes from ``/proc/<pid>/statm`` (its second field, in pages; proc(5))."""
    fields = text.split()
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return int(fields[1]) * page_bytes


def _cpu_seconds() -> float:
    # User + system CPU of this process, like os.times(), but from
    # CLOCK_PROCESS_CPUTIME_ID: os.times() counts in clock ticks (10 ms), coarser than a
    # whole tick's work, so it would print 0.00ms or 10.00ms and nothing in between.
    return time.process_time()


class SelfCost:
    """Fills ``agent_rss``, ``agent_cpu_ms`` and ``agent_cpu_seconds`` of each sample.

    ``agent_cpu_ms`` is the time used since the previous sample (the first one counts from
    process start, so start-up cost is shown once rather than hidden), which is what the log
    line prints; ``agent_cpu_seconds`` is the running total those add up to, which is what a
    push carries: a counter survives a missed push or scrape, a per-interval figure does not.
    """

    def __init__(
        self,
        statm_path: str = STATM_PATH,
        cpu_seconds: Callable[[], float] = _cpu_seconds,
    ):
        self.statm_path = statm_path
        self.cpu_seconds = cpu_seconds
        self.page_bytes = PAGE_SIZE
        self._previous_cpu = 0.0

    def rss(self) -> int | None:
        """Resident bytes now, or None where there is no /proc (the metric is then left out)."""
        try:
            fd = os.open(self.statm_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            text = os.read(fd, 256)
        except OSError:
            return None
        finally:
            os.close(fd)
        return parse_statm_rss(text, self.page_bytes)

    def cpu_ms(self) -> float:
        """CPU milliseconds used since the previous call."""
        now = max(self.cpu_seconds(), self._previous_cpu)
        used = now - self._previous_cpu
        self._previous_cpu = now
        return used * 1000.0

    def fill(self, sample: Sample) -> None:
        sample.agent_rss = self.rss()
        sample.agent_cpu_ms = self.cpu_ms()
        # The total the per-sample figures add up to, so the two can never disagree.
        sample.agent_cpu_seconds = self._previous_cpu
