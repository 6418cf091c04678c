"""The metrics a push carries, read from one Sample: one table both wire formats are built from.

Each entry knows its OTLP name, OTel unit and kind, its Prometheus name (units in the name, as
Prometheus asks) and how to read the value from the Sample. Values are the Sample's own fields,
the same numbers the log line is formatted from, so what a backend shows and what the log line
says can never disagree. A field the sources could not read is None and is left out of the push,
exactly as it is left out of the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable, Union

from ..sample import Sample

Number = Union[int, float]

GAUGE = "gauge"
COUNTER = "counter"  # cumulative and monotonic: an OTLP monotonic sum, a Prometheus counter


@dataclass(frozen=True)
class Metric:
    otlp_name: str
    otlp_unit: str
    prometheus_name: str
    kind: str
    description: str
    read: Callable[[Sample], Number | None]
    # Prometheus wants base units: the agent's CPU milliseconds are pushed there as seconds.
    prometheus_scale: float = 1.0


def _load(index: int) -> Callable[[Sample], float | None]:
    def read(sample: Sample) -> float | None:
        if sample.load is None:
            return None
        return (sample.load.avg_1m, sample.load.avg_5m, sample.load.avg_15m)[index]

    return read


def _memory(name: str) -> Callable[[Sample], int | None]:
    def read(sample: Sample) -> int | None:
        if sample.memory is None:
            return None
        return getattr(sample.memory, name)

    return read


def _tasks(name: str) -> Callable[[Sample], int | None]:
    def read(sample: Sample) -> int | None:
        if sample.tasks is None:
            return None
        return getattr(sample.tasks, name)

    return read


def _workers(name: str) -> Callable[[Sample], int | None]:
    def read(sample: Sample) -> int | None:
        if sample.workers is None:
            return None
        return getattr(sample.workers, name)

    return read


METRICS: tuple[Metric, ...] = (
    Metric(
        "dynostat.load_average.1m", "1", "dynostat_load_avg_1m", GAUGE,
        "Run-queue length averaged over 1 minute (/proc/loadavg).", _load(0),
    ),
    Metric(
        "dynostat.load_average.5m", "1", "dynostat_load_avg_5m", GAUGE,
        "Run-queue length averaged over 5 minutes (/proc/loadavg).", _load(1),
    ),
    Metric(
        "dynostat.load_average.15m", "1", "dynostat_load_avg_15m", GAUGE,
        "Run-queue length averaged over 15 minutes (/proc/loadavg).", _load(2),
    ),
    Metric(
        "dynostat.memory.total", "By", "dynostat_memory_total_bytes", GAUGE,
        "The dyno's memory: rss + cache + swap of its memory cgroup.", _memory("total"),
    ),
    Metric(
        "dynostat.memory.rss", "By", "dynostat_memory_rss_bytes", GAUGE,
        "Anonymous resident memory of the dyno's memory cgroup.", _memory("rss"),
    ),
    Metric(
        "dynostat.memory.cache", "By", "dynostat_memory_cache_bytes", GAUGE,
        "Page cache charged to the dyno's memory cgroup.", _memory("cache"),
    ),
    Metric(
        "dynostat.memory.swap", "By", "dynostat_memory_swap_bytes", GAUGE,
        "Swap used by the dyno's memory cgroup.", _memory("swap"),
    ),
    Metric(
        "dynostat.memory.pgpgin", "{page}", "dynostat_memory_pgpgin_pages_total", COUNTER,
        "Pages charged to the dyno's memory cgroup since it was created.", _memory("pgpgin"),
    ),
    Metric(
        "dynostat.memory.pgpgout", "{page}", "dynostat_memory_pgpgout_pages_total", COUNTER,
        "Pages uncharged from the dyno's memory cgroup since it was created.",
        _memory("pgpgout"),
    ),
    Metric(
        "dynostat.memory.quota", "By", "dynostat_memory_quota_bytes", GAUGE,
        "Memory limit of the dyno's memory cgroup.", _memory("quota"),
    ),
    Metric(
        "dynostat.tasks", "{task}", "dynostat_tasks", GAUGE,
        "Threads of every process in the dyno, zombies included: what the task limit counts.",
        _tasks("tasks"),
    ),
    Metric(
        "dynostat.tasks.limit", "{task}", "dynostat_tasks_limit", GAUGE,
        "The dyno's task limit: the lower of RLIMIT_NPROC and the pids cgroup's pids.max.",
        _tasks("limit"),
    ),
    Metric(
        "dynostat.processes", "{process}", "dynostat_processes", GAUGE,
        "Processes in the dyno, zombies included.", _tasks("processes"),
    ),
    Metric(
        "dynostat.threads", "{thread}", "dynostat_threads", GAUGE,
        "Threads of every process in the dyno.", _tasks("threads"),
    ),
    Metric(
        "dynostat.zombies", "{process}", "dynostat_zombies", GAUGE,
        "Processes that exited and whose parent has not waited for them.", _tasks("zombies"),
    ),
    Metric(
        "dynostat.memory.oom_kills", "{kill}", "dynostat_memory_oom_kills_total", COUNTER,
        "Processes of the dyno's memory cgroup the OOM killer killed (oom_kill).",
        _memory("oom_kills"),
    ),
    Metric(
        "dynostat.workers", "{process}", "dynostat_workers", GAUGE,
        "Workers of the largest worker group (processes with one parent and one comm).",
        _workers("workers"),
    ),
    Metric(
        "dynostat.workers.pss", "By", "dynostat_workers_pss_bytes", GAUGE,
        "Mean PSS of the largest worker group's workers (smaps_rollup).",
        _workers("worker_pss"),
    ),
    Metric(
        "dynostat.workers.uss", "By", "dynostat_workers_uss_bytes", GAUGE,
        "USS of the largest worker group's largest worker: what one more worker adds.",
        _workers("worker_uss"),
    ),
    Metric(
        "dynostat.workers.parent_pss", "By", "dynostat_workers_parent_pss_bytes", GAUGE,
        "PSS of the largest worker group's parent.", _workers("parent_pss"),
    ),
    Metric(
        "dynostat.workers.fits", "{process}", "dynostat_workers_fits", GAUGE,
        "How many workers fit below DYNOSTAT_WARN_MEMORY_PCT % of the memory quota.",
        _workers("fits"),
    ),
    Metric(
        "dynostat.agent.rss", "By", "dynostat_agent_rss_bytes", GAUGE,
        "Resident memory of the dynostat agent itself.", lambda sample: sample.agent_rss,
    ),
    Metric(
        "dynostat.agent.cpu", "ms", "dynostat_agent_cpu_seconds", GAUGE,
        "CPU time the dynostat agent used since its previous sample.",
        lambda sample: sample.agent_cpu_ms,
        prometheus_scale=0.001,
    ),
)  # fmt: skip

# The sink's own drop counter rides along with every push; it is not a Sample field because the
# sink, not the sources, knows it.
PUSH_DROPPED = Metric(
    "dynostat.push.dropped",
    "{sample}",
    "dynostat_push_dropped_total",
    COUNTER,
    "Samples the push buffer dropped because the endpoint failed for too long.",
    lambda sample: None,
)


def present(sample: Sample) -> Iterator[tuple[Metric, Number]]:
    """Every metric of the table whose value the sample holds, in table order."""
    for metric in METRICS:
        value = metric.read(sample)
        if value is not None:
            yield metric, value
