"""The whole agent, started as users start it, pushing while it prints: both say the same."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from push_expected import OTLP as OTLP_EXPECTED
from push_expected import PUSHGATEWAY as PUSHGATEWAY_AS_LINE
from push_servers import Reply

AGENT_DIR = str(Path(__file__).resolve().parents[2] / "agent")
_METRIC = re.compile(r"sample#dynostat\.(\w+)=(\S+)")
SECRET = "agent-header-s3cret"


def run_agent(**env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "dynostat", "--interval", "1", "--count", "2"],
        env={**os.environ, "PYTHONPATH": AGENT_DIR, "DYNO": "web.7", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout.splitlines()


def last_sample_values(lines: list[str]) -> dict[str, str]:
    """The metrics of the last sample printed (every sample prints every metric it has)."""
    values: dict[str, str] = {}
    for line in lines:
        values.update(_METRIC.findall(line))
    return values


# The largest worker group's figures are pushed with every sample, but printed on their own
# line only when it is due (first seen, changed, every 10 minutes): the last sample need not
# have printed them. tests/push/test_pushgateway.py and test_otlp.py compare them with the
# workers line of the same sample.
WORKERS_FIGURES = {"workers", "worker_pss", "worker_uss", "parent_pss", "fits"}


def printed_part(pushed: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in pushed.items() if name not in WORKERS_FIGURES}


def test_the_agent_pushes_to_the_pushgateway_what_its_last_line_printed(pushgateway):
    lines = run_agent(
        DYNOSTAT_URL=pushgateway.url,
        DYNOSTAT_PUSH_PROTOCOL="pushgateway",
        DYNOSTAT_PUSH_HEADERS=f"X-Api-Key={SECRET}",
        HEROKU_APP_NAME="agent-e2e",
    )

    assert not [line for line in lines if "at=error" in line]
    assert SECRET not in "\n".join(lines)
    with urllib.request.urlopen(pushgateway.url + "/api/v1/metrics", timeout=5) as answer:
        data = json.load(answer)["data"]
    [group] = [g for g in data if g["labels"].get("app") == "agent-e2e"]
    assert group["labels"]["instance"] == "web.7"
    pushed = {}
    for name, family in group.items():
        if name.startswith("dynostat_"):
            line_name, render = PUSHGATEWAY_AS_LINE[name]
            pushed[line_name] = render(float(family["metrics"][0]["value"]))
    assert printed_part(pushed) == last_sample_values(lines)


def test_the_agent_pushes_otlp_that_matches_each_printed_sample(receiver):
    lines = run_agent(DYNOSTAT_URL=receiver.url + "/v1/metrics")

    assert not [line for line in lines if "at=error" in line]
    assert len(receiver.requests) == 2
    request = json_format.Parse(
        receiver.requests[-1].body, ExportMetricsServiceRequest(), ignore_unknown_fields=False
    )
    pushed = {}
    for metric in request.resource_metrics[0].scope_metrics[0].metrics:
        _unit, kind, line_name, render = OTLP_EXPECTED[metric.name]
        point = getattr(metric, kind).data_points[0]
        value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
        pushed[line_name] = render(value)
    assert printed_part(pushed) == last_sample_values(lines)


def test_sigterm_during_a_hung_push_still_gets_a_last_sample_within_a_second(receiver):
    receiver.default = Reply(hang=30)  # every push hangs for its whole budget
    agent = subprocess.Popen(
        [sys.executable, "-m", "dynostat", "--interval", "20"],
        env={**os.environ, "PYTHONPATH": AGENT_DIR, "DYNO": "web.7",
             "DYNOSTAT_URL": receiver.url + "/v1/metrics"},
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # Tick 1's lines up to its tasks line (a line said once, such as a smaps_rollup this
        # machine refuses even to root, may come before them).
        lines = []
        while not lines or "sample#dynostat.tasks=" not in lines[-1]:
            lines.append(agent.stdout.readline())
            assert len(lines) <= 10, lines
        assert all(line.startswith("source=web.7 ") for line in lines)
        while not receiver.requests:  # the push of tick 1 has started and now hangs
            time.sleep(0.01)
        signalled = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
        exited = time.monotonic() - signalled
        rest = agent.stdout.read().splitlines()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0
    assert exited < 1.0
    # A whole last sample after the signal, then nothing else (no error for the cut push).
    assert len([line for line in rest if "sample#dynostat.tasks=" in line]) == 1
    assert not [line for line in rest if "at=error" in line]
