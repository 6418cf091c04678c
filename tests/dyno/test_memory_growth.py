"""Memory growth to near the quota: the agent's memory warning fires, with the numbers."""

from __future__ import annotations

import harness
from scenario import INTERVAL

from support import readme_decoder

MEMORY_LIMIT = 160 * harness.MIB


def test_the_agent_warns_when_memory_nears_the_quota(boot):
    dyno = boot("memory", "python3 web.py", memory_limit=MEMORY_LIMIT)
    holding = dyno.wait_for(r"web\[\d+\]: holding at", 60)
    web_pid = holding.text.split("[", 1)[1].split("]", 1)[0]
    warning = dyno.wait_for(
        lambda line: bool(harness.warnings([line], "memory_near_quota")), 5 * INTERVAL
    )
    fields = readme_decoder.fields(warning.text)
    assert fields["memory_quota"] == "160.00MB"
    assert int(fields["pct"]) >= 90
    assert float(fields["memory_total"].removesuffix("MB")) >= 0.9 * 160
    # The process holding the memory is the one named.
    assert (fields["pid"], fields["comm"]) == (web_pid, "python3")
    memory = dyno.wait_for("sample#dynostat.memory_total=", 3 * INTERVAL)
    assert readme_decoder.fields(memory.text)["sample#dynostat.memory_quota"] == "160.00MB"
    # It grew without being killed: the web process is still there.
    assert "Process exited" not in dyno.log_text()
