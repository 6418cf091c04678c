"""A thread leak: one process's threads climb; the agent's warning names that process."""

from __future__ import annotations

import re

import harness
from scenario import INTERVAL

from support import readme_decoder


def test_the_agent_names_the_process_whose_threads_climb(boot):
    dyno = boot("threads", "python3 web.py", config={"THREAD_RATE": "5", "THREAD_MAX": "40"})
    started = dyno.wait_for(r"thread_leaker\[\d+\]: started pid=\d+", 20)
    leaker_pid = re.search(r"pid=(\d+)", started.text).group(1)
    warning = dyno.wait_for(
        lambda line: bool(harness.warnings([line], "threads_rising")), 10 * INTERVAL
    )
    fields = readme_decoder.fields(warning.text)
    assert (fields["pid"], fields["comm"]) == (leaker_pid, "thread_leaker")
    assert int(fields["threads"]) > int(fields["from"])
    # The same process leads the thread ranking of the samples around the warning.
    top = dyno.wait_for("top#threads=", 3 * INTERVAL, after=dyno.lines.index(warning))
    assert readme_decoder.fields(top.text)["top#threads"].startswith(f"{leaker_pid}/thread_leaker:")
    # Nobody else is blamed: the web process and the agent keep one thread each.
    blamed = {readme_decoder.fields(w.text)["pid"] for w in harness.warnings(dyno.lines)}
    assert blamed == {leaker_pid}
