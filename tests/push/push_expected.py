"""What each pushed metric must look like, and how the agent's line prints its value.

Written out here, apart from the agent's own metric table, so that a wrong name, unit, kind,
attribute or conversion on either side fails the tests instead of agreeing with itself. The
OTLP names, units, instruments and attributes are those of OpenTelemetry's semantic
conventions (v1.44: system.memory.usage with system.memory.state, system.paging.usage with
system.paging.state, system.memory.limit, system.process.count with process.state) and of the
collector's host metrics (system.cpu.load_average.*, unit {thread}, a gauge).
"""

from __future__ import annotations

import re

MB = 1024 * 1024


def _two(value: float) -> str:
    return f"{value:.2f}"


def _mb(value: float) -> str:
    return f"{value / MB:.2f}MB"


def _pages(value: float) -> str:
    return f"{int(value)}pages"


def _count(value: float) -> str:
    return str(int(value))


# The agent's CPU is a running total in seconds where it is pushed, and milliseconds since the
# previous sample on the line; the tests compare it with the sample's total and with the sum of
# the printed figures.
AGENT_CPU = "agent_cpu_total"

USED = (("system.memory.state", "used"),)
CACHED = (("system.memory.state", "cached"),)
SWAP_USED = (("system.paging.state", "used"),)
DEFUNCT = (("process.state", "defunct"),)

# (OTLP name, attributes) -> (unit, data ("gauge"/"sum"), monotonic (None for a gauge),
#                            the line's name, the line's text for the pushed number)
OTLP = {
    ("system.cpu.load_average.1m", ()): ("{thread}", "gauge", None, "load_avg_1m", _two),
    ("system.cpu.load_average.5m", ()): ("{thread}", "gauge", None, "load_avg_5m", _two),
    ("system.cpu.load_average.15m", ()): ("{thread}", "gauge", None, "load_avg_15m", _two),
    ("dynostat.memory.total", ()): ("By", "sum", False, "memory_total", _mb),
    ("system.memory.usage", USED): ("By", "sum", False, "memory_rss", _mb),
    ("system.memory.usage", CACHED): ("By", "sum", False, "memory_cache", _mb),
    ("system.paging.usage", SWAP_USED): ("By", "sum", False, "memory_swap", _mb),
    ("system.memory.limit", ()): ("By", "sum", False, "memory_quota", _mb),
    ("dynostat.memory.pgpgin", ()): ("{page}", "sum", True, "memory_pgpgin", _pages),
    ("dynostat.memory.pgpgout", ()): ("{page}", "sum", True, "memory_pgpgout", _pages),
    ("dynostat.tasks", ()): ("{task}", "sum", False, "tasks", _count),
    ("dynostat.tasks.limit", ()): ("{task}", "sum", False, "tasks_limit", _count),
    ("dynostat.processes", ()): ("{process}", "sum", False, "processes", _count),
    ("dynostat.threads", ()): ("{thread}", "sum", False, "threads", _count),
    ("system.process.count", DEFUNCT): ("{process}", "sum", False, "zombies", _count),
    ("dynostat.agent.rss", ()): ("By", "sum", False, "agent_rss", _mb),
    ("dynostat.agent.cpu", ()): ("s", "sum", True, AGENT_CPU, float),
    ("dynostat.push.dropped", ()): ("{sample}", "sum", True, "push_dropped", _count),
    ("dynostat.memory.oom_kills", ()): ("{kill}", "sum", True, "memory_oom_kills", _count),
    # The largest worker group, as its workers line prints it.
    ("dynostat.workers", ()): ("{process}", "sum", False, "workers", _count),
    ("dynostat.workers.pss", ()): ("By", "gauge", None, "worker_pss", _mb),
    ("dynostat.workers.uss", ()): ("By", "gauge", None, "worker_uss", _mb),
    ("dynostat.workers.parent_pss", ()): ("By", "gauge", None, "parent_pss", _mb),
    ("dynostat.workers.fits", ()): ("{process}", "gauge", None, "fits", _count),
}

# (Prometheus name, labels other than dyno) -> (the line's name, its text for the value, TYPE)
PUSHGATEWAY = {
    ("system_cpu_load_average_1m", ()): ("load_avg_1m", _two, "gauge"),
    ("system_cpu_load_average_5m", ()): ("load_avg_5m", _two, "gauge"),
    ("system_cpu_load_average_15m", ()): ("load_avg_15m", _two, "gauge"),
    ("dynostat_memory_total_bytes", ()): ("memory_total", _mb, "gauge"),
    ("system_memory_usage_bytes", (("system_memory_state", "used"),)): ("memory_rss", _mb, "gauge"),
    ("system_memory_usage_bytes", (("system_memory_state", "cached"),)): (
        "memory_cache",
        _mb,
        "gauge",
    ),
    ("system_paging_usage_bytes", (("system_paging_state", "used"),)): (
        "memory_swap",
        _mb,
        "gauge",
    ),
    ("system_memory_limit_bytes", ()): ("memory_quota", _mb, "gauge"),
    ("dynostat_memory_pgpgin_total", ()): ("memory_pgpgin", _pages, "counter"),
    ("dynostat_memory_pgpgout_total", ()): ("memory_pgpgout", _pages, "counter"),
    ("dynostat_tasks", ()): ("tasks", _count, "gauge"),
    ("dynostat_tasks_limit", ()): ("tasks_limit", _count, "gauge"),
    ("dynostat_processes", ()): ("processes", _count, "gauge"),
    ("dynostat_threads", ()): ("threads", _count, "gauge"),
    ("dynostat_zombies", ()): ("zombies", _count, "gauge"),
    ("dynostat_agent_rss_bytes", ()): ("agent_rss", _mb, "gauge"),
    ("dynostat_agent_cpu_seconds_total", ()): (AGENT_CPU, float, "counter"),
    ("dynostat_push_dropped_total", ()): ("push_dropped", _count, "counter"),
    ("dynostat_memory_oom_kills_total", ()): ("memory_oom_kills", _count, "counter"),
    ("dynostat_workers", ()): ("workers", _count, "gauge"),
    ("dynostat_workers_pss_bytes", ()): ("worker_pss", _mb, "gauge"),
    ("dynostat_workers_uss_bytes", ()): ("worker_uss", _mb, "gauge"),
    ("dynostat_workers_parent_pss_bytes", ()): ("parent_pss", _mb, "gauge"),
    ("dynostat_workers_fits", ()): ("fits", _count, "gauge"),
}

# The OTLP-to-Prometheus unit words of the OpenTelemetry specification
# (compatibility/prometheus_and_openmetrics.md) for the units the push uses.
_UNIT_WORDS = {"By": "bytes", "s": "seconds", "ms": "milliseconds", "1": ""}


def prometheus_name(otlp_name: str, unit: str, data: str, monotonic: bool | None) -> str:
    """The Prometheus name the specification's rules give an OTLP metric: characters outside
    [a-zA-Z0-9_:] become ``_`` (runs of them one), the unit's word is appended unless the
    name ends with it (``{...}`` units have none), and a monotonic sum ends in ``_total``."""
    name = re.sub(r"[^a-zA-Z0-9_:]+", "_", otlp_name)
    word = "" if unit.startswith("{") else _UNIT_WORDS[unit]
    if word and not name.endswith("_" + word):
        name += "_" + word
    if data == "sum" and monotonic and not name.endswith("_total"):
        name += "_total"
    return name
