"""What each pushed metric must look like, and how the agent's line prints its value.

Written out here, apart from the agent's own metric table, so that a wrong unit, name or
conversion on either side fails the tests instead of agreeing with itself.
"""

from __future__ import annotations

MB = 1024 * 1024

# OTLP name -> (unit, kind, the line's name, the line's text for the pushed number)
OTLP = {
    "dynostat.load_average.1m": ("1", "gauge", "load_avg_1m", lambda v: f"{v:.2f}"),
    "dynostat.load_average.5m": ("1", "gauge", "load_avg_5m", lambda v: f"{v:.2f}"),
    "dynostat.load_average.15m": ("1", "gauge", "load_avg_15m", lambda v: f"{v:.2f}"),
    "dynostat.memory.total": ("By", "gauge", "memory_total", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.memory.rss": ("By", "gauge", "memory_rss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.memory.cache": ("By", "gauge", "memory_cache", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.memory.swap": ("By", "gauge", "memory_swap", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.memory.quota": ("By", "gauge", "memory_quota", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.memory.pgpgin": ("{page}", "sum", "memory_pgpgin", lambda v: f"{v}pages"),
    "dynostat.memory.pgpgout": ("{page}", "sum", "memory_pgpgout", lambda v: f"{v}pages"),
    "dynostat.memory.oom_kills": ("{kill}", "sum", "memory_oom_kills", str),
    # The largest worker group, as its workers line prints it.
    "dynostat.workers": ("{process}", "gauge", "workers", str),
    "dynostat.workers.pss": ("By", "gauge", "worker_pss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.workers.uss": ("By", "gauge", "worker_uss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.workers.parent_pss": ("By", "gauge", "parent_pss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.workers.fits": ("{process}", "gauge", "fits", str),
    "dynostat.tasks": ("{task}", "gauge", "tasks", str),
    "dynostat.tasks.limit": ("{task}", "gauge", "tasks_limit", str),
    "dynostat.processes": ("{process}", "gauge", "processes", str),
    "dynostat.threads": ("{thread}", "gauge", "threads", str),
    "dynostat.zombies": ("{process}", "gauge", "zombies", str),
    "dynostat.agent.rss": ("By", "gauge", "agent_rss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat.agent.cpu": ("ms", "gauge", "agent_cpu", lambda v: f"{v:.2f}ms"),
    "dynostat.push.dropped": ("{sample}", "sum", "push_dropped", str),
}

# Prometheus name -> (the line's name, the line's text for the pushed number). The conversions
# are written out here, apart from the agent's metric table, so a wrong unit in either fails.
PUSHGATEWAY = {
    "dynostat_load_avg_1m": ("load_avg_1m", lambda v: f"{v:.2f}"),
    "dynostat_load_avg_5m": ("load_avg_5m", lambda v: f"{v:.2f}"),
    "dynostat_load_avg_15m": ("load_avg_15m", lambda v: f"{v:.2f}"),
    "dynostat_memory_total_bytes": ("memory_total", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_memory_rss_bytes": ("memory_rss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_memory_cache_bytes": ("memory_cache", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_memory_swap_bytes": ("memory_swap", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_memory_quota_bytes": ("memory_quota", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_memory_pgpgin_pages_total": ("memory_pgpgin", lambda v: f"{int(v)}pages"),
    "dynostat_memory_pgpgout_pages_total": ("memory_pgpgout", lambda v: f"{int(v)}pages"),
    "dynostat_memory_oom_kills_total": ("memory_oom_kills", lambda v: f"{int(v)}"),
    "dynostat_workers": ("workers", lambda v: f"{int(v)}"),
    "dynostat_workers_pss_bytes": ("worker_pss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_workers_uss_bytes": ("worker_uss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_workers_parent_pss_bytes": ("parent_pss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_workers_fits": ("fits", lambda v: f"{int(v)}"),
    "dynostat_tasks": ("tasks", lambda v: f"{int(v)}"),
    "dynostat_tasks_limit": ("tasks_limit", lambda v: f"{int(v)}"),
    "dynostat_processes": ("processes", lambda v: f"{int(v)}"),
    "dynostat_threads": ("threads", lambda v: f"{int(v)}"),
    "dynostat_zombies": ("zombies", lambda v: f"{int(v)}"),
    "dynostat_agent_rss_bytes": ("agent_rss", lambda v: f"{v / MB:.2f}MB"),
    "dynostat_agent_cpu_seconds": ("agent_cpu", lambda v: f"{v * 1000:.2f}ms"),
    "dynostat_push_dropped_total": ("push_dropped", lambda v: f"{int(v)}"),
}
PUSHGATEWAY_COUNTERS = {
    "dynostat_memory_oom_kills_total",
    "dynostat_memory_pgpgin_pages_total",
    "dynostat_memory_pgpgout_pages_total",
    "dynostat_push_dropped_total",
}
