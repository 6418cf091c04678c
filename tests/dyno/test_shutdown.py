"""Shutdown like the platform's: SIGTERM to every process, SIGKILL after the grace period.

The app here ignores SIGTERM and never reaps its children: the agent must still print its
last sample and be gone within a second (not left as that app's zombie), and nothing of the
dyno may be left afterwards."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import harness
from scenario import INTERVAL


def _start_time(host_pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{host_pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(b")") + 2 :].split()[19].decode()


def test_on_sigterm_the_agent_prints_its_last_sample_and_is_gone_within_a_second(boot):
    dyno = boot("stubborn", "python3 web.py", grace=3.0)
    listening = dyno.wait_for(r"web\[\d+\]: listening; child \d+ left unreaped", 20)
    web_pid, child_pid = (int(n) for n in re.findall(r"\d+", listening.text)[:2])
    sample = dyno.wait_for("sample#dynostat.tasks=", 3 * INTERVAL, after=len(dyno.lines))
    (agent,) = dyno.agents()
    assert agent.ppid == 1, "the agent must belong to the dyno's init, not to the app"
    agent_started = _start_time(agent.host_pid)

    # SIGTERM half an interval after a sample, while the agent sleeps to its next deadline:
    # what is tested is the sample the signal itself makes the agent print.
    time.sleep(max(0.0, sample.mono + 0.5 * INTERVAL - time.monotonic()))
    stopper = threading.Thread(target=dyno.stop)
    stopper.start()
    try:
        sigterm = dyno.wait_for(lambda line: line.text.startswith("Stopping all processes"), 5)
        last = dyno.wait_for("sample#dynostat.tasks=", 1.0, after=dyno.lines.index(sigterm))
        assert last.mono - sigterm.mono <= 1.0
        while _start_time(agent.host_pid) == agent_started:
            assert time.monotonic() - sigterm.mono <= 1.0, "the agent outlived SIGTERM by 1 s"
            time.sleep(0.01)
        # Gone, not a zombie; while the app, which ignores SIGTERM, is still there and
        # still has not reaped its own child.
        alive = {process.pid: process for process in dyno.processes()}
        assert alive[web_pid].state != "Z"
        assert alive[child_pid].state == "Z"
        assert agent.pid not in alive
        assert dyno.wait_for("SIGTERM ignored", 1.0, after=dyno.lines.index(sigterm))
    finally:
        stopper.join()

    texts = [line.text for line in dyno.lines]
    assert texts.index("Stopping remaining processes with SIGKILL") > texts.index(sigterm.text)
    assert not harness.metric_lines(dyno.lines[dyno.lines.index(last) + 1 :], "tasks")
    assert dyno.wait_down(5)
    assert not dyno.cgroups.pids()
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _owner(pid) == dyno.uid]


def _owner(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        return None
