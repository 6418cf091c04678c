"""Pushing to a real Prometheus Pushgateway, scraped by a real Prometheus server.

Values are read back through the Pushgateway's HTTP API and through Prometheus's query API,
and the exposition is checked with Prometheus's own linter (``promtool check metrics``).
"""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest
from push_expected import AGENT_CPU, PUSHGATEWAY, prometheus_name
from push_expected import OTLP as OTLP_EXPECTED
from push_sample import (
    DYNO,
    NOT_CAPTURED,
    TREES,
    pushed_values,
    sink_from_env,
    take_sample,
    waiting,
)
from push_servers import wait_for_query

from dynostat.push import metrics
from dynostat.push import pushgateway as exposition
from dynostat.push.pushgateway import group_url
from support.paths import README
from support.prefork import PreforkServer
from support.reports import Reports

APP = "zombie-farm-42"
# Labels the Pushgateway and the grouping key add; the rest are the metric's own.
GROUP_LABELS = {"job", "instance", "app", "dyno"}


def groups(gateway_url: str) -> list[dict]:
    with urllib.request.urlopen(gateway_url + "/api/v1/metrics", timeout=5) as answer:
        document = json.load(answer)
    assert document["status"] == "success"
    return document["data"]


def group_of(gateway_url: str, instance: str) -> dict:
    matching = [
        group
        for group in groups(gateway_url)
        if group["labels"] == {"job": "dynostat", "instance": instance, "app": APP}
    ]
    assert len(matching) == 1, f"one group for instance={instance!r}, got {len(matching)}"
    return matching[0]


def pushed_series(group: dict) -> dict[tuple, tuple]:
    """``{(name, own labels): (value, TYPE, HELP, dyno label)}`` of what the agent pushed."""
    series = {}
    for name, family in group.items():
        # The group's labels, its push times and flags are the gateway's, not the agent's.
        if name in ("labels", "push_time_seconds", "push_failure_time_seconds"):
            continue
        if not isinstance(family, dict):
            continue
        for metric in family["metrics"]:
            own = tuple(
                sorted((k, v) for k, v in metric["labels"].items() if k not in GROUP_LABELS)
            )
            series[(name, own)] = (
                float(metric["value"]),
                family["type"].lower(),
                family["help"],
                metric["labels"]["dyno"],
            )
    return series


def pushgateway_sink(gateway_url: str, lines: list, **env: str):
    env = {
        "DYNOSTAT_URL": gateway_url,
        "DYNOSTAT_PUSH_PROTOCOL": "pushgateway",
        "HEROKU_APP_NAME": APP,
        **env,
    }
    sink = sink_from_env(env, 20, lines)
    assert sink is not None
    return sink


@pytest.mark.parametrize("tree", list(TREES))
def test_a_real_sample_reads_back_from_the_gateway_as_the_agent_line_prints_it(pushgateway, tree):
    lines = Reports()
    sink = pushgateway_sink(pushgateway.url, lines)
    # A preforking server of its own, so a sample of this machine has a worker group whatever
    # else runs.
    with PreforkServer(8, 4, 2):
        sample = take_sample(tree=tree)
    instance = f"web.1-{tree.replace(' ', '-')}"

    sink.send(sample, instance, DYNO)

    assert lines == []
    assert waiting(sink) == 0
    as_line = {}
    for key, (value, kind, help_text, dyno) in pushed_series(
        group_of(pushgateway.url, instance)
    ).items():
        assert key in PUSHGATEWAY, f"unexpected series {key}"
        line_name, render, expected_kind = PUSHGATEWAY[key]
        assert dyno == DYNO
        assert kind == expected_kind, key
        assert help_text, key
        as_line[line_name] = render(value)
    # Every metric of the agent's line, no more, with the same value to the printed digit.
    assert as_line == pushed_values(sample)
    assert {"memory_rss", "tasks", "load_avg_1m", "agent_rss"} <= set(as_line)
    if tree == "this machine":
        assert {"memory_oom_kills", "workers", "worker_pss", "worker_uss"} <= set(as_line)


def test_every_series_reaches_prometheus_with_the_value_the_line_printed(pushgateway, prometheus):
    lines = Reports()
    sink = pushgateway_sink(pushgateway.url, lines)
    sample = take_sample(tree="captured dyno")
    expected = pushed_values(sample)

    sink.send(sample, "web.scraped", DYNO)

    assert lines == []
    selector = f'{{job="dynostat",instance="web.scraped",app="{APP}",dyno="{DYNO}"}}'

    def as_line(result: list[dict]) -> dict[str, str]:
        values = {}
        for series in result:
            labels = dict(series["metric"])
            name = labels.pop("__name__")
            own = tuple(sorted((k, v) for k, v in labels.items() if k not in GROUP_LABELS))
            if (name, own) in PUSHGATEWAY:
                line_name, render, _ = PUSHGATEWAY[(name, own)]
                values[line_name] = render(float(series["value"][1]))
        return values

    result = wait_for_query(prometheus.url, selector, lambda result: as_line(result) == expected)

    assert as_line(result) == expected
    every = {line_name for line_name, _, _ in PUSHGATEWAY.values()} - {AGENT_CPU}
    assert set(expected) - {AGENT_CPU} == every - NOT_CAPTURED


@pytest.mark.parametrize("tree", list(TREES))
def test_the_exposition_passes_promtool_as_sent_and_as_the_gateway_serves_it(
    pushgateway, promtool, tree
):
    sample = take_sample(tree=tree)
    body = exposition.encode(sample, DYNO, 3)

    checked = promtool(body)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")

    sink = pushgateway_sink(pushgateway.url, Reports())
    sink.send(sample, "web.linted", DYNO)
    with urllib.request.urlopen(pushgateway.url + "/metrics", timeout=5) as answer:
        served = answer.read()
    ours = b"".join(
        line + b"\n"
        for line in served.splitlines()
        if any(name.encode() in line for name, _ in PUSHGATEWAY)
    )
    assert b'instance="web.linted"' in ours
    checked = promtool(ours)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")


def test_promtool_would_catch_a_badly_named_metric(promtool):
    # The check above can fail: the name the OTLP rules give zombies is one promtool refuses.
    bad = b"# HELP system_process_count x\n# TYPE system_process_count gauge\n"
    bad += b"system_process_count 1\n"
    checked = promtool(bad)
    assert checked.returncode != 0
    assert b"_count" in checked.stdout + checked.stderr


def test_prometheus_names_are_what_the_otlp_rules_make_of_the_otlp_names():
    """One name per metric whichever way it reaches Prometheus (the Pushgateway, or a
    backend's OTLP intake), except where that name would fail promtool."""
    pushed = {(metric.otlp_name, metric.attributes): metric for metric in metrics.METRICS}
    pushed[(metrics.PUSH_DROPPED.otlp_name, ())] = metrics.PUSH_DROPPED
    assert set(pushed) == set(OTLP_EXPECTED)
    for key, metric in pushed.items():
        unit, data, monotonic, _, _ = OTLP_EXPECTED[key]
        translated = prometheus_name(metric.otlp_name, unit, data, monotonic)
        if metric.otlp_name == "system.process.count":
            assert (translated, metric.prometheus_name) == (
                "system_process_count",
                "dynostat_zombies",
            )
        else:
            assert metric.prometheus_name == translated, key


def test_a_metric_the_next_sample_lacks_disappears_instead_of_keeping_an_old_value(
    pushgateway,
):
    lines = Reports()
    sink = pushgateway_sink(pushgateway.url, lines)
    sample = take_sample()
    sink.send(sample, "worker.3", DYNO)
    names = {name for name, _ in pushed_series(group_of(pushgateway.url, "worker.3"))}
    assert "system_memory_usage_bytes" in names

    sample.memory = None
    sink.send(sample, "worker.3", DYNO)

    names = {name for name, _ in pushed_series(group_of(pushgateway.url, "worker.3"))}
    assert not [name for name in names if "memory" in name and "agent" not in name]
    assert "dynostat_tasks" in names
    assert lines == []


def test_gzip_on_request_is_accepted_by_the_gateway(pushgateway):
    lines = Reports()
    sink = pushgateway_sink(pushgateway.url, lines, DYNOSTAT_PUSH_COMPRESSION="gzip")
    sample = take_sample()

    sink.send(sample, "web.gzip", DYNO)

    assert lines == []
    series = pushed_series(group_of(pushgateway.url, "web.gzip"))
    assert series[("dynostat_tasks", ())][0] == sample.tasks.tasks


def test_the_dyno_label_is_the_dyno_id_also_in_drop_in_mode(pushgateway):
    sink = pushgateway_sink(pushgateway.url, Reports(), HEROKU_DYNO_ID=DYNO, HEROKU_APP_ID="app-id")

    # In drop-in mode the line's dyno= is heroku.<app id>.<dyno id>; the label stays the id.
    sink.send(take_sample(), "web.dropin", f"heroku.app-id.{DYNO}")

    series = pushed_series(group_of(pushgateway.url, "web.dropin"))
    assert {dyno for *_, dyno in series.values()} == {DYNO}


def test_a_source_with_a_slash_is_kept_whole_in_the_instance_label(pushgateway):
    lines = Reports()
    sink = pushgateway_sink(pushgateway.url, lines)
    odd_source = "web/2 canary"

    sink.send(take_sample(), odd_source, DYNO)

    assert lines == []
    group = group_of(pushgateway.url, odd_source)
    assert int(float(group["dynostat_tasks"]["metrics"][0]["value"])) > 0
    encoded = base64.urlsafe_b64encode(odd_source.encode()).decode()
    assert group_url("http://gw:9091/", odd_source, APP) == (
        f"http://gw:9091/metrics/job/dynostat/instance@base64/{encoded}/app/{APP}"
    )


def test_the_readme_table_names_every_pushed_metric_as_the_agent_pushes_it():
    readme = README.read_text()
    table = readme.split("| line (`sample#dynostat.…`) |", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]
    pushed = [*metrics.METRICS, metrics.PUSH_DROPPED]
    assert len(rows) == len(pushed)
    for metric, row in zip(pushed, rows):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        otlp_name = f"`{metric.otlp_name}`"
        for key, value in metric.attributes:
            otlp_name += f" {{`{key}={value}`}}"
        labels = ",".join(f'{key}="{value}"' for key, value in metric.prometheus_labels)
        prometheus = metric.prometheus_name + (f"{{{labels}}}" if labels else "")
        kind = {"gauge": "gauge", "updown": "up-down sum", "counter": "monotonic sum"}
        assert cells[1].startswith(otlp_name), (cells, otlp_name)
        assert cells[2:4] == [f"`{metric.unit}`", kind[metric.kind]], cells
        assert cells[4].endswith(f"`{prometheus}`"), (cells, prometheus)
