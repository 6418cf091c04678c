"""One-off dynos get no agent and no output of dynostat's; sourcing the profile again in a
running dyno (as `heroku ps:exec` sessions and nested login shells do) starts no second
agent."""

from __future__ import annotations

import harness
from scenario import assert_exec_sessions_leave_one_agent


def test_a_one_off_dyno_starts_no_agent_and_prints_nothing(boot):
    dyno = boot("healthy", "echo one-off started; sleep 1; echo one-off done", dyno="run.1")
    dyno.wait_for("^one-off started$", 10)
    assert dyno.agents() == []
    assert dyno.wait_exit(10) == 0
    assert [line.text for line in dyno.app_lines()] == ["one-off started", "one-off done"]
    # Nothing was left behind to keep the dyno up: no detached agent anywhere.
    assert dyno.wait_down(5)


def test_sourcing_the_profile_again_in_a_running_dyno_leaves_exactly_one_agent(boot):
    dyno = boot("healthy", "python3 web.py")
    dyno.wait_for("sample#dynostat.tasks=", 10)
    sessions = [
        None,  # like `heroku ps:exec`: no config vars, no DYNO
        {"PATH": harness.BASE_PATH, "HOME": "/app", "DYNO": "web.1"},  # the dyno's name only
        dyno.environment(),  # a nested login shell of the app: everything the dyno has
    ]
    assert_exec_sessions_leave_one_agent(dyno, [env for env in sessions for _ in range(2)], 3)
