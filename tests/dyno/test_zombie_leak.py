"""The incident: a worker forks children and never waits for them until fork fails with
EAGAIN. The agent must name the culprit before that, keep printing through the exhaustion
(it needs no new thread or process to do so) and show the dyno recover."""

from __future__ import annotations

import re

import harness
from scenario import INTERVAL

from support import readme_decoder

TASKS_LIMIT = 128


def test_the_agent_names_the_zombie_parent_before_fork_fails_and_prints_through_it(boot):
    dyno = boot(
        "zombies",
        "python3 web.py",
        tasks_limit=TASKS_LIMIT,
        config={"ZOMBIE_RATE": "8", "ZOMBIE_GIVE_UP": "4"},
    )
    started = dyno.wait_for(r"leaky_worker\[\d+\]: started pid=\d+", 20)
    worker_pid = re.search(r"pid=(\d+)", started.text).group(1)
    (agent,) = dyno.agents()
    first_eagain = dyno.wait_for("fork failed: EAGAIN", 60)
    # In the thick of it the agent is the same single-threaded process: it neither crashed
    # and came back, nor needed a thread to keep going.
    assert [(a.host_pid, a.threads) for a in dyno.agents()] == [(agent.host_pid, 1)]
    gave_up = dyno.wait_for("giving up", 30)
    recovered = dyno.wait_for(
        lambda line: line.mono > gave_up.mono and harness.metric(line, "zombies") == 0,
        5 * INTERVAL,
    )
    lines = list(dyno.lines)

    # Named before the first EAGAIN: the rising zombies and the task limit, both with the
    # worker's pid as seen inside the dyno and its comm.
    for event in ("zombies_rising", "tasks_near_limit"):
        early = [w for w in harness.warnings(lines, event) if w.mono < first_eagain.mono]
        assert early, f"no {event} warning before the first EAGAIN at {first_eagain}"
        fields = readme_decoder.fields(early[0].text)
        assert (fields["pid"], fields["comm"]) == (worker_pid, "leaky_worker"), early[0]
        assert fields["source"] == "web.1"

    # Every interval from the worker's start to the recovery, through the exhaustion.
    tasks_lines = [
        line
        for line in harness.metric_lines(lines, "tasks")
        if started.mono <= line.mono <= recovered.mono
    ]
    assert max(harness.gaps(tasks_lines)) <= 1.5 * INTERVAL
    exhausted = [line for line in tasks_lines if first_eagain.mono <= line.mono <= gave_up.mono]
    assert exhausted, "no sample while fork was failing"
    assert max(harness.metric(line, "tasks") for line in exhausted) >= TASKS_LIMIT - 2
    assert all(harness.metric(line, "tasks_limit") == TASKS_LIMIT for line in tasks_lines)
    # The parent is named with its zombie count while it holds the dyno's tasks.
    assert any(
        f"top#zombie_parents={worker_pid}/leaky_worker:" in line.text
        for line in lines
        if first_eagain.mono <= line.mono <= gave_up.mono
    )

    assert not [line for line in lines if "at=error" in line.text]

    # Once the worker is gone the dyno's init reaps its zombies and the numbers fall.
    assert harness.metric(recovered, "zombies") == 0
    assert harness.metric(recovered, "tasks") <= 5
