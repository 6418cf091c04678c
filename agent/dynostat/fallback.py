"""A psutil sampler for machines without procfs (a developer's Mac), so the agent still runs.

Only the numbers psutil can give are filled; the memory figures are the machine's, not a
cgroup's, and the first sample says so in one line. psutil is imported here and nowhere else
in the agent: it is not on a dyno, and on Linux the procfs scan is several times cheaper.
"""

from __future__ import annotations

import heapq
import os
import resource
from typing import TYPE_CHECKING, Any

from .sample import Culprit, LoadAvg, Memory, Sample, Tasks

if TYPE_CHECKING:
    from .records import Report


class FallbackSampler:
    def __init__(self, top: int, report: Report, proc_root: str = "/proc") -> None:
        self.top = top
        self._report = report
        self._proc_root = proc_root
        self._announced = False
        try:
            import psutil  # noqa: PLC0415 - only where there is no procfs, never on a dyno
        except ImportError:
            self._psutil: Any = None
        else:
            self._psutil = psutil

    def _announce(self) -> None:
        if self._announced:
            return
        self._announced = True
        if self._psutil is None:
            reason = "no procfs and no psutil: only load is sampled"
        else:
            reason = "no procfs: sampling with psutil, memory is the whole machine's"
        self._report(
            {
                "at": "info",
                "event": "fallback_sampler",
                "proc_root": self._proc_root,
                "reason": reason,
            }
        )

    def sample(self, wall_time: float) -> Sample:
        self._announce()
        sample = Sample(wall_time=wall_time)
        try:
            sample.load = LoadAvg(*os.getloadavg())
        except OSError:
            pass  # no load average on this platform: the metric is left out
        if self._psutil is None:
            return sample
        try:
            self._fill(sample)
        except Exception as error:  # noqa: BLE001 - one reported line instead of a lost tick
            self._report(
                {
                    "at": "error",
                    "event": "source_failed",
                    "path": "psutil",
                    "error": f"{type(error).__name__}: {error}",
                }
            )
        return sample

    def _fill(self, sample: Sample) -> None:
        psutil = self._psutil
        virtual = psutil.virtual_memory()
        sample.memory = Memory(
            rss=virtual.total - virtual.available,
            swap=psutil.swap_memory().used,
            quota=virtual.total,
        )
        rows: list[tuple] = []
        threads = zombies = 0
        attrs = ["pid", "ppid", "name", "status", "num_threads", "memory_info"]
        for process in psutil.process_iter(attrs):
            info = process.info
            # Fields psutil could not read (AccessDenied, a zombie on macOS) come back None.
            count = info["num_threads"] or 1
            rss = info["memory_info"].rss if info["memory_info"] is not None else 0
            zombie = info["status"] == psutil.STATUS_ZOMBIE
            rows.append((info["pid"], info["ppid"] or 0, info["name"] or "?", zombie, count, rss))
            threads += count
            zombies += zombie
        soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
        sample.tasks = Tasks(
            tasks=threads,
            processes=len(rows),
            threads=threads,
            zombies=zombies,
            limit=None if soft == resource.RLIM_INFINITY else soft,
        )
        sample.zombie_parents = _zombie_parents(rows, self.top)
        sample.top_threads = [
            Culprit(pid, name, count)
            for pid, _, name, _, count, _ in heapq.nlargest(self.top, rows, key=lambda row: row[4])
            if count > 1
        ]
        sample.top_rss = [
            Culprit(pid, name, rss)
            for pid, _, name, _, _, rss in heapq.nlargest(self.top, rows, key=lambda row: row[5])
            if rss > 0
        ]


def _zombie_parents(rows: list[tuple], top: int) -> list[Culprit]:
    counts: dict[int, int] = {}
    for _, ppid, _, zombie, _, _ in rows:
        if zombie:
            counts[ppid] = counts.get(ppid, 0) + 1
    names = {row[0]: row[2] for row in rows if row[0] in counts}
    best = heapq.nlargest(top, counts.items(), key=lambda item: item[1])
    return [Culprit(ppid, names.get(ppid, "?"), count) for ppid, count in best]
