"""What every dyno scenario shares: the fixture apps, the agent's interval in tests, and the
check that the profile sourced again starts no second agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import harness

from support.paths import DYNO_APPS as APPS

# The module the fixture apps' web processes share, put into each one's slug.
APP_FILES = (APPS / "serving.py",)
# Short, for a quick suite; the scenarios' bounds are written in intervals.
INTERVAL = 1.0
CONFIG = {"DYNOSTAT_INTERVAL": "1"}


def assert_exec_sessions_leave_one_agent(
    dyno: harness.Dyno, session_envs: Sequence[Mapping[str, str] | None], samples: int
) -> None:
    """Runs a `heroku ps:exec`-like session in the running dyno with each environment (None:
    the platform's own, without config vars), each of which sources the profile again, and
    fails unless each printed only its own output and, over the next ``samples`` samples,
    the agent that ran before is the one agent printing, one group per interval."""
    (agent,) = dyno.agents()
    for env in session_envs:
        result = dyno.exec("echo session ran", env=env)
        assert (result.returncode, result.stdout) == (0, "session ran\n")
    mark = len(dyno.lines)
    for _ in range(samples):
        dyno.wait_for("sample#dynostat.tasks=", 3 * INTERVAL, after=len(dyno.lines))
    assert [process.host_pid for process in dyno.agents()] == [agent.host_pid]
    # A second agent would crowd the stream with a second group per interval.
    tasks_lines = harness.metric_lines(dyno.lines[mark:], "tasks")
    assert all(gap >= 0.5 * INTERVAL for gap in harness.gaps(tasks_lines))
