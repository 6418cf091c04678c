"""The metrics a push carries, read from one Sample: one table both wire formats are built from.

Each entry knows its OTLP name, unit, kind and attributes, its Prometheus name and how to read
the value from the Sample. Values are the Sample's own fields, the same numbers the log line
is formatted from, so what a backend shows and what the log line says can never disagree. A
field the sources could not read is None and is left out of the push, exactly as it is left
out of the line.

Names follow OpenTelemetry's semantic conventions where they name the same quantity (the load
averages as the collector's host metrics name them, the dyno's memory by state, zombies as
defunct processes) and stay ``dynostat.*`` where no convention does (tasks against the limit,
threads, the agent's own cost). The Prometheus name of each is what the OpenTelemetry
specification's OTLP-to-Prometheus rules make of the OTLP name, unit and kind (dots become
``_``, the unit's word is appended, a counter ends in ``_total``), so a metric has one name in
Prometheus whether it came through the Pushgateway or through a backend's OTLP intake; the one
exception is a name those rules make that Prometheus's own lint refuses.

Kinds follow the conventions' instruments: ``GAUGE`` (load averages), ``UPDOWN`` (an amount
that goes up and down and adds up across dynos: bytes, counts; an OTLP non-monotonic
cumulative sum, a Prometheus gauge) and ``COUNTER`` (a running total that only grows: an OTLP
monotonic cumulative sum, a Prometheus counter).
"""

from __future__ import annotations

from ..sample import Sample

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Union

    Number = Union[int, float]

GAUGE = "gauge"
UPDOWN = "updown"
COUNTER = "counter"


class Metric:
    """One pushed series. A slotted class rather than a dataclass: dataclasses cost the agent
    more than a megabyte of memory (records.py)."""

    __slots__ = (
        "otlp_name",
        "unit",
        "kind",
        "attributes",
        "prometheus_name",
        "prometheus_labels",
        "description",
        "read",
    )

    def __init__(  # noqa: PLR0917 - each entry of the table is one positional row
        self,
        otlp_name: str,
        unit: str,
        kind: str,
        prometheus_name: str,
        description: str,
        read: Callable[[Sample], Number | None],
        attributes: tuple[tuple[str, str], ...] = (),
        prometheus_labels: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self.otlp_name = otlp_name
        self.unit = unit
        self.kind = kind
        self.attributes = attributes
        self.prometheus_name = prometheus_name
        # The attributes as labels (``system.memory.state`` is ``system_memory_state``), unless
        # the Prometheus name already says what they do.
        if prometheus_labels is None:
            prometheus_labels = tuple((key.replace(".", "_"), value) for key, value in attributes)
        self.prometheus_labels = prometheus_labels
        self.description = description
        self.read = read


def _field(part: str, name: str) -> Callable[[Sample], Number | None]:
    """Reads ``sample.<part>.<name>``: None when the sample has no ``part``."""

    def read(sample: Sample) -> Number | None:
        group = getattr(sample, part)
        return None if group is None else getattr(group, name)

    return read


_LOAD_DESCRIPTION = "Run-queue length of the host averaged over {} (/proc/loadavg)."
_MEMORY_USAGE_DESCRIPTION = (
    "The dyno's memory by state: used is the anonymous resident memory of its memory cgroup,"
    " cached its page cache."
)

METRICS: tuple[Metric, ...] = (
    Metric(
        "system.cpu.load_average.1m", "{thread}", GAUGE, "system_cpu_load_average_1m",
        _LOAD_DESCRIPTION.format("1 minute"), _field("load", "avg_1m"),
    ),
    Metric(
        "system.cpu.load_average.5m", "{thread}", GAUGE, "system_cpu_load_average_5m",
        _LOAD_DESCRIPTION.format("5 minutes"), _field("load", "avg_5m"),
    ),
    Metric(
        "system.cpu.load_average.15m", "{thread}", GAUGE, "system_cpu_load_average_15m",
        _LOAD_DESCRIPTION.format("15 minutes"), _field("load", "avg_15m"),
    ),
    Metric(
        "dynostat.memory.total", "By", UPDOWN, "dynostat_memory_total_bytes",
        "The dyno's memory as log-runtime-metrics counts it: rss + cache + swap of its"
        " memory cgroup.",
        _field("memory", "total"),
    ),
    Metric(
        "system.memory.usage", "By", UPDOWN, "system_memory_usage_bytes",
        _MEMORY_USAGE_DESCRIPTION,
        _field("memory", "rss"), (("system.memory.state", "used"),),
    ),
    Metric(
        "system.memory.usage", "By", UPDOWN, "system_memory_usage_bytes",
        _MEMORY_USAGE_DESCRIPTION,
        _field("memory", "cache"), (("system.memory.state", "cached"),),
    ),
    Metric(
        "system.paging.usage", "By", UPDOWN, "system_paging_usage_bytes",
        "Swap used by the dyno's memory cgroup.",
        _field("memory", "swap"), (("system.paging.state", "used"),),
    ),
    Metric(
        "system.memory.limit", "By", UPDOWN, "system_memory_limit_bytes",
        "The dyno's memory quota: the limit of its memory cgroup.", _field("memory", "quota"),
    ),
    Metric(
        "dynostat.memory.pgpgin", "{page}", COUNTER, "dynostat_memory_pgpgin_total",
        "Pages charged to the dyno's memory cgroup since it was created.",
        _field("memory", "pgpgin"),
    ),
    Metric(
        "dynostat.memory.pgpgout", "{page}", COUNTER, "dynostat_memory_pgpgout_total",
        "Pages uncharged from the dyno's memory cgroup since it was created.",
        _field("memory", "pgpgout"),
    ),
    Metric(
        "dynostat.tasks", "{task}", UPDOWN, "dynostat_tasks",
        "Threads of every process in the dyno, zombies included: what the task limit counts.",
        _field("tasks", "tasks"),
    ),
    Metric(
        "dynostat.tasks.limit", "{task}", UPDOWN, "dynostat_tasks_limit",
        "The dyno's task limit: the lower of RLIMIT_NPROC and the pids cgroup's pids.max.",
        _field("tasks", "limit"),
    ),
    Metric(
        "dynostat.processes", "{process}", UPDOWN, "dynostat_processes",
        "Processes in the dyno, zombies included.", _field("tasks", "processes"),
    ),
    Metric(
        "dynostat.threads", "{thread}", UPDOWN, "dynostat_threads",
        "Threads of every process in the dyno.", _field("tasks", "threads"),
    ),
    # The name the OTLP rules give this in Prometheus, system_process_count, is one
    # Prometheus's own lint refuses (a gauge must not end in _count), so there it is a gauge
    # of dynostat's own.
    Metric(
        "system.process.count", "{process}", UPDOWN, "dynostat_zombies",
        "Processes in the dyno by state: defunct ones (zombies) exited and their parent has"
        " not waited for them.",
        _field("tasks", "zombies"), (("process.state", "defunct"),), (),
    ),
    Metric(
        "dynostat.memory.oom_kills", "{kill}", COUNTER, "dynostat_memory_oom_kills_total",
        "Processes of the dyno's memory cgroup the OOM killer killed (oom_kill).",
        _field("memory", "oom_kills"),
    ),
    # The largest worker group (processes with one parent and one comm): how many, what each
    # costs, and how many fit. The mean and the largest of a group do not add up across
    # dynos, so they are gauges; the number of workers does.
    Metric(
        "dynostat.workers", "{process}", UPDOWN, "dynostat_workers",
        "Workers of the largest worker group (processes with one parent and one comm).",
        _field("workers", "workers"),
    ),
    Metric(
        "dynostat.workers.pss", "By", GAUGE, "dynostat_workers_pss_bytes",
        "Mean PSS of the largest worker group's workers (smaps_rollup).",
        _field("workers", "worker_pss"),
    ),
    Metric(
        "dynostat.workers.uss", "By", GAUGE, "dynostat_workers_uss_bytes",
        "USS of the largest worker group's largest worker: what one more worker adds.",
        _field("workers", "worker_uss"),
    ),
    Metric(
        "dynostat.workers.parent_pss", "By", GAUGE, "dynostat_workers_parent_pss_bytes",
        "PSS of the largest worker group's parent.", _field("workers", "parent_pss"),
    ),
    Metric(
        "dynostat.workers.fits", "{process}", GAUGE, "dynostat_workers_fits",
        "How many workers fit below DYNOSTAT_WARN_MEMORY_PCT % of the memory quota.",
        _field("workers", "fits"),
    ),
    Metric(
        "dynostat.agent.rss", "By", UPDOWN, "dynostat_agent_rss_bytes",
        "Resident memory of the dynostat agent itself.", lambda sample: sample.agent_rss,
    ),
    Metric(
        "dynostat.agent.cpu", "s", COUNTER, "dynostat_agent_cpu_seconds_total",
        "CPU time (user and system) the dynostat agent has used since it started.",
        lambda sample: sample.agent_cpu_seconds,
    ),
)  # fmt: skip

# The sink's own drop counter rides along with every push; it is not read from the Sample
# because the sink, not the sources, knows it at the moment it builds the request.
PUSH_DROPPED = Metric(
    "dynostat.push.dropped",
    "{sample}",
    COUNTER,
    "dynostat_push_dropped_total",
    "Samples the push buffer dropped because the endpoint failed for too long.",
    lambda sample: None,
)


def present(sample: Sample) -> Iterator[tuple[Metric, Number]]:
    """Every metric of the table whose value the sample holds, in table order."""
    for metric in METRICS:
        value = metric.read(sample)
        if value is not None:
            yield metric, value


def families(sample: Sample, dropped: int) -> list[list[tuple[Metric, Number]]]:
    """The sample's metrics grouped by name, in table order, the drop counter last.

    Entries of one name (``system.memory.usage`` used and cached) are one OTLP metric with a
    data point per attribute set, and one Prometheus family with a series per label set.
    """
    grouped: dict[str, list[tuple[Metric, Number]]] = {}
    for metric, value in present(sample):
        grouped.setdefault(metric.otlp_name, []).append((metric, value))
    grouped[PUSH_DROPPED.otlp_name] = [(PUSH_DROPPED, dropped)]
    return list(grouped.values())
