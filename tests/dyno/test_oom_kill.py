"""An OOM kill: a job worker allocates until the kernel kills it at the dyno's limit; the
agent counts the kill and names the worker the kernel took."""

from __future__ import annotations

import re

import harness
from scenario import INTERVAL

from support import readme_decoder

MEMORY_LIMIT = 192 * harness.MIB


def test_the_agent_counts_an_oom_kill_and_names_the_process_killed(boot):
    dyno = boot("oom", "python3 web.py", config={"HOG_MB_PER_S": "40"}, memory_limit=MEMORY_LIMIT)
    started = dyno.wait_for(r"job_worker started pid=\d+", 30)
    worker = re.search(r"pid=(\d+)", started.text).group(1)
    dyno.wait_for(rf"job_worker {worker} killed by signal 9", 30)
    warning = dyno.wait_for(lambda line: bool(harness.warnings([line], "oom_kill")), 3 * INTERVAL)
    fields = readme_decoder.fields(warning.text)
    assert (fields["oom_kills"], fields["pid"], fields["comm"]) == ("1", worker, "job_worker")
    # Its rss at the last sample before the kill: most of the way to the 192 MB limit.
    assert 60 <= float(fields["rss"].removesuffix("MB")) <= 192
    # The memory line counts it from that tick on (it had said 0 before).
    counts = [harness.metric(line, "memory_oom_kills") for line in dyno.lines]
    counts = [count for count in counts if count is not None]
    assert counts[0] == 0 and counts[-1] == 1 and sorted(counts) == counts
    # The web process and the agent lived on: only the worker was killed.
    assert "Process exited" not in dyno.log_text()
    assert len(dyno.agents()) == 1
