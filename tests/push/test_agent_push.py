"""The whole agent, started as users start it, pushing while it prints: both say the same."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from otlp_bodies import parse_received, point_value, points, resource
from push_expected import AGENT_CPU, OTLP, PUSHGATEWAY
from push_servers import Reply, wait_for_query

AGENT_DIR = str(Path(__file__).resolve().parents[2] / "agent")
_METRIC = re.compile(r"sample#(?:dynostat\.)?(\w+)=(\S+)")
SECRET = "agent-header-s3cret"
# Each printed agent_cpu is rounded to 0.01 ms: the running total may differ from their sum
# by half of that per sample.
CPU_ROUNDING_S = 0.005e-3


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
    """The metrics of the last sample printed (every sample prints every metric it has), with
    the agent's CPU as the running total of every sample's figure."""
    values: dict[str, str] = {}
    cpu_ms = 0.0
    for line in lines:
        for name, value in _METRIC.findall(line):
            values[name] = value
            if name == "agent_cpu":
                cpu_ms += float(value.removesuffix("ms"))
    del values["agent_cpu"]
    values[AGENT_CPU] = cpu_ms / 1000
    return values


# The largest worker group's figures are pushed with every sample, but printed on their own
# line only when it is due (first seen, changed, every 10 minutes): the last sample need not
# have printed them. tests/push/test_pushgateway.py and test_otlp.py compare them with the
# workers line of the same sample.
WORKERS_FIGURES = {"workers", "worker_pss", "worker_uss", "parent_pss", "fits"}


def differences(pushed: dict, printed: dict) -> dict:
    """``{name: (pushed, printed)}`` of every value the push does not carry as printed; the
    agent's CPU total may differ from the sum of its printed figures by their rounding."""
    found = {}
    for name in (pushed.keys() | printed.keys()) - WORKERS_FIGURES:
        value, expected = pushed.get(name), printed.get(name)
        if name == AGENT_CPU and value is not None and expected is not None:
            if abs(value - expected) <= 2 * CPU_ROUNDING_S:
                continue
        if value != expected:
            found[name] = (value, expected)
    return found


def test_every_series_the_agent_printed_reaches_prometheus_through_the_gateway(
    pushgateway, prometheus
):
    lines = run_agent(
        DYNOSTAT_URL=pushgateway.url,
        DYNOSTAT_PUSH_PROTOCOL="pushgateway",
        DYNOSTAT_PUSH_HEADERS=f"X-Api-Key={SECRET}",
        HEROKU_APP_NAME="agent-e2e",
    )

    assert not [line for line in lines if "at=error" in line]
    assert SECRET not in "\n".join(lines)
    printed = last_sample_values(lines)

    def scraped(result: list[dict]) -> dict:
        values = {}
        for series in result:
            labels = dict(series["metric"])
            name = labels.pop("__name__")
            own = tuple(
                sorted(
                    (k, v) for k, v in labels.items() if k not in ("job", "instance", "app", "dyno")
                )
            )
            if (name, own) in PUSHGATEWAY:
                line_name, render, _ = PUSHGATEWAY[(name, own)]
                values[line_name] = render(float(series["value"][1]))
        return values

    selector = '{job="dynostat",instance="web.7",app="agent-e2e"}'
    # Prometheus may have scraped the first push and not yet the last: wait for the last.
    result = wait_for_query(
        prometheus.url, selector, lambda result: not differences(scraped(result), printed)
    )
    assert differences(scraped(result), printed) == {}


def test_the_agent_pushes_otlp_protobuf_that_matches_each_printed_sample(receiver):
    lines = run_agent(DYNOSTAT_URL=receiver.url + "/v1/metrics")

    assert not [line for line in lines if "at=error" in line]
    assert len(receiver.requests) == 2
    assert receiver.requests[-1].headers["Content-Type"] == "application/x-protobuf"
    pushed = {}
    for key, (_, point) in points(parse_received(receiver.requests[-1])).items():
        _unit, _data, _monotonic, line_name, render = OTLP[key]
        pushed[line_name] = render(point_value(point))
    assert differences(pushed, last_sample_values(lines)) == {}


def test_with_only_protocol_otlp_the_agent_pushes_where_the_apps_otel_settings_point(receiver):
    lines = run_agent(
        DYNOSTAT_PUSH_PROTOCOL="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url + "/otlp",
        OTEL_EXPORTER_OTLP_HEADERS=f"x-api-key={SECRET},x-team=zombies",
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="http/json",
        OTEL_SERVICE_NAME="checkout",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=staging",
        HEROKU_APP_NAME="shop",
    )

    assert not [line for line in lines if "at=error" in line]
    assert SECRET not in "\n".join(lines)
    assert len(receiver.requests) == 2
    received = receiver.requests[-1]
    assert received.path == "/otlp/v1/metrics"
    assert received.headers["x-api-key"] == SECRET
    assert received.headers["x-team"] == "zombies"
    assert received.headers["Content-Encoding"] == "gzip"
    assert received.headers["Content-Type"] == "application/json"
    attributes = resource(parse_received(received))
    assert attributes["service.name"] == "checkout"
    assert attributes["deployment.environment.name"] == "staging"
    assert attributes["heroku.dyno.name"] == "web.7"


def test_in_drop_in_mode_the_lines_name_the_dyno_as_log_runtime_metrics_does(receiver):
    app_id, dyno_id = "9b1f6f7e-0000-4000-8000-0123456789ab", "0c7f1b6e-5d0a-4c31-9a3e-7d2f61e0b9aa"
    lines = run_agent(
        DYNOSTAT_URL=receiver.url + "/v1/metrics",
        DYNOSTAT_METRIC_PREFIX="",
        HEROKU_APP_ID=app_id,
        HEROKU_DYNO_ID=dyno_id,
    )

    samples = [line for line in lines if "sample#" in line]
    assert samples
    assert all(
        line.startswith(f"source=web.7 dyno=heroku.{app_id}.{dyno_id} sample#") for line in samples
    )
    assert any(" sample#memory_total=" in line or " sample#tasks=" in line for line in samples)
    # The push still names the dyno by its id.
    assert resource(parse_received(receiver.requests[-1]))["service.instance.id"] == dyno_id


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
