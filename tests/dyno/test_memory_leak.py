"""A steady leak: the agent warns with the rate, an ETA the leak then keeps (within 35%),
and the process that grew, long before memory nears the quota."""

from __future__ import annotations

import re

import harness
from scenario import INTERVAL

from support import readme_decoder

MEMORY_LIMIT = 256 * harness.MIB


def go_seconds(duration: str) -> float:
    return sum(
        int(number) * {"h": 3600, "m": 60, "s": 1}[unit]
        for number, unit in re.findall(r"(\d+)([hms])", duration)
    )


def test_a_steady_leak_is_announced_with_an_eta_before_it_reaches_the_quota(boot):
    dyno = boot("leak", "python3 web.py", config={"LEAK_MB_PER_S": "8"}, memory_limit=MEMORY_LIMIT)
    started = dyno.wait_for(r"leaky_web\[\d+\]: leaking", 30)
    leaker = re.search(r"\[(\d+)\]", started.text).group(1)
    # Ten samples make a trend; the warning comes with the tenth or soon after.
    warning = dyno.wait_for(
        lambda line: bool(harness.warnings([line], "memory_growing")), 20 * INTERVAL
    )
    fields = readme_decoder.fields(warning.text)
    assert (fields["pid"], fields["comm"]) == (leaker, "leaky_web")
    assert fields["memory_quota"] == "256.00MB"
    rate = float(fields["rate"].removesuffix("MB/h"))
    assert 0.7 * 8 * 3600 <= rate <= 1.3 * 8 * 3600  # 8 MB/s, as the app leaks
    # The time it then really takes memory_total to reach 90% of the quota, as the agent's
    # own lines print it.
    line_mb = 0.9 * 256
    reached = dyno.wait_for(
        lambda line: (harness.metric(line, "memory_total") or 0) >= line_mb,
        120,
        after=dyno.lines.index(warning),
    )
    took = reached.mono - warning.mono
    assert abs(go_seconds(fields["eta"]) - took) <= 0.35 * took, (fields["eta"], took)
    # The warning came first; memory_near_quota only once the line was crossed (on that
    # tick, a few lines after its memory line, or a later one).
    near = dyno.wait_for(
        lambda line: bool(harness.warnings([line], "memory_near_quota")),
        3 * INTERVAL,
        after=dyno.lines.index(warning),
    )
    assert near.mono >= reached.mono
