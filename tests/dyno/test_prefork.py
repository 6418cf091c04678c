"""A preforking web server: the agent names its worker group, what each worker really costs
(checked against the kernel's smaps_rollup) and how many workers the dyno's quota holds."""

from __future__ import annotations

import math
import re
from pathlib import Path

import harness
from scenario import INTERVAL

from support import readme_decoder

MEMORY_LIMIT = 512 * harness.MIB
CONFIG = {"WEB_CONCURRENCY": "3", "APP_MB": "40", "WORKER_MB": "15"}


def kernel_pss_mb(host_pid: int) -> float:
    for line in Path(f"/proc/{host_pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no Pss line for {host_pid}")


def test_the_agent_names_the_worker_group_what_a_worker_costs_and_how_many_fit(boot):
    dyno = boot("prefork", "python3 web.py", config=CONFIG, memory_limit=MEMORY_LIMIT)
    forked = dyno.wait_for(r"web-master\[\d+\]: 3 workers forked", 30)
    master = re.search(r"\[(\d+)\]", forked.text).group(1)
    for _ in range(3):
        dyno.wait_for(r"web-worker\[\d+\]: worker \d ready", 10, after=dyno.lines.index(forked))

    # The workers line, whenever it came: the group, its parent and its figures.
    line = dyno.wait_for(
        lambda line: "event=workers" in line.text and f" pid={master} " in line.text,
        5 * INTERVAL,
    )
    printed = readme_decoder.fields(line.text)
    assert (printed["at"], printed["comm"], printed["workers"]) == ("info", "web-master", "3")
    assert {"worker_pss", "worker_uss", "parent_pss", "fits"} <= set(printed)

    # A whole tick after the workers filled their memory: its memory line and top#pss.
    ready = len(dyno.lines)
    memory = dyno.wait_for("sample#dynostat.memory_total=", 3 * INTERVAL, after=ready)
    top = dyno.wait_for("top#pss=", 2 * INTERVAL, after=dyno.lines.index(memory))
    workers = {str(p.pid): p for p in dyno.processes() if p.comm == "web-worker"}
    assert len(workers) == 3
    entries = readme_decoder.top(readme_decoder.fields(top.text)["top#pss"])
    # The three workers hold the most: 15 MB of their own and a quarter of the app's 40 MB.
    assert sorted(str(pid) for pid, _, _ in entries) == sorted(workers)
    for pid, comm, value in entries:
        assert comm == "web-worker"
        assert abs(float(value.removesuffix("MB")) - kernel_pss_mb(workers[str(pid)].host_pid)) < 1

    # fits by the README's formula, from the same tick's memory line: the workers there
    # are, plus the whole workers of worker_uss that fit below 90% of the quota.
    numbers = readme_decoder.fields(memory.text)
    quota = float(numbers["sample#dynostat.memory_quota"].removesuffix("MB"))
    rss = float(numbers["sample#dynostat.memory_rss"].removesuffix("MB"))
    swap = float(numbers["sample#dynostat.memory_swap"].removesuffix("MB"))
    uss = float(printed["worker_uss"].removesuffix("MB"))
    assert quota == 512
    assert uss >= 15
    assert abs(int(printed["fits"]) - (3 + math.floor((quota * 0.9 - rss - swap) / uss))) <= 1
