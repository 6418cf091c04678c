"""A healthy web dyno: the agent prints its line group every interval, and its numbers are the
dyno's own (the cgroup's quota and limit, what the test counts inside the namespace)."""

from __future__ import annotations

import time

import harness
import pytest
from scenario import INTERVAL

from support import readme_decoder

MEMORY_LIMIT = 256 * harness.MIB


@pytest.mark.parametrize(
    "cgroupns", [False, True], ids=["machine-cgroup-tree", "own-cgroup-namespace"]
)
def test_a_healthy_dyno_gets_a_line_group_every_interval_with_the_dyno_s_own_numbers(
    boot, cgroupns
):
    # Whether the dyno sees the machine's cgroup tree (and finds itself through
    # /proc/self/cgroup) or only its own (a container's view), the numbers are the dyno's.
    dyno = boot(
        "healthy",
        "python3 web.py",
        memory_limit=MEMORY_LIMIT,
        tasks_limit=200,
        cgroupns=cgroupns,
    )
    dyno.wait_for("^web: listening", 20)
    # Five intervals once the web process is up.
    up = len(dyno.lines)
    for _ in range(5):
        dyno.wait_for("sample#dynostat.tasks=", 2 * INTERVAL, after=len(dyno.lines))
    lines = dyno.lines[up:]

    tasks_lines = harness.metric_lines(lines, "tasks")
    assert len(tasks_lines) >= 5
    assert all(0.5 * INTERVAL <= gap <= 1.5 * INTERVAL for gap in harness.gaps(tasks_lines))
    for group in ("load_avg_1m", "memory_total"):
        # Every tasks line has its load and memory line of the same sample just before it.
        group_lines = harness.metric_lines(lines, group)
        assert len(group_lines) >= len(tasks_lines) - 1
    quota = f"{dyno.cgroups.read_memory_limit() / harness.MIB:.2f}MB"
    assert quota == "256.00MB"
    for line in harness.metric_lines(lines, "memory_quota"):
        assert readme_decoder.fields(line.text)["sample#dynostat.memory_quota"] == quota
        assert readme_decoder.fields(line.text)["dyno"] == dyno.hostname
        assert readme_decoder.fields(line.text)["source"] == "web.1"
    assert dyno.cgroups.read_pids_max() == 200
    for line in tasks_lines:
        # Both limits are 200 here: RLIMIT_NPROC of the dyno's user and the cgroup's pids.max.
        assert harness.metric(line, "tasks_limit") == 200
    assert not harness.warnings(dyno.lines)


def test_the_agent_counts_what_the_test_counts_inside_the_namespace(boot):
    dyno = boot("healthy", "python3 web.py")
    dyno.wait_for("^web: listening", 20)
    dyno.wait_for("sample#dynostat.tasks=", 3 * INTERVAL, after=len(dyno.lines))
    for _ in range(3):
        # Right after one sample, well before the next: the census never overlaps a scan,
        # so the agent cannot count the census process, nor the census the agent's fork.
        before = dyno.wait_for("sample#dynostat.tasks=", 3 * INTERVAL, after=len(dyno.lines))
        census = dyno.census()
        census_done = time.monotonic()
        after = dyno.wait_for("sample#dynostat.tasks=", 3 * INTERVAL, after=len(dyno.lines))
        if after.mono > census_done:
            break
    else:
        raise AssertionError("the census never fitted between two samples")
    for line in (before, after):
        assert harness.metric(line, "processes") == census["processes"]
        assert harness.metric(line, "threads") == census["threads"]
        assert harness.metric(line, "zombies") == census["zombies"]
        assert harness.metric(line, "tasks") == census["tasks"]
    # init, the web process and the agent; nothing else runs in a healthy dyno.
    assert census == {"processes": 3, "threads": 3, "zombies": 0, "tasks": 3}
    assert len(dyno.agents()) == 1
    assert dyno.agents()[0].ppid == 1
