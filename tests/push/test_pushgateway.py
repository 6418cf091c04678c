"""Pushing to a real Prometheus Pushgateway and reading the values back through its HTTP API."""

from __future__ import annotations

import base64
import json
import urllib.request

from push_expected import PUSHGATEWAY, PUSHGATEWAY_COUNTERS
from push_sample import DYNO, SOURCE, line_values, sink_from_env, take_sample, waiting

from dynostat.push.pushgateway import group_url
from support.prefork import PreforkServer
from support.reports import Reports

APP = "zombie-farm-42"


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


def pushed_families(group: dict) -> dict[str, dict]:
    return {name: family for name, family in group.items() if name.startswith("dynostat_")}


def pushgateway_sink(gateway_url: str, lines: list):
    env = {
        "DYNOSTAT_URL": gateway_url,
        "DYNOSTAT_PUSH_PROTOCOL": "pushgateway",
        "HEROKU_APP_NAME": APP,
    }
    sink = sink_from_env(env, 20, lines)
    assert sink is not None
    return sink


def test_a_real_sample_reads_back_from_the_gateway_as_the_agent_line_prints_it(pushgateway):
    lines = Reports()
    sink = pushgateway_sink(pushgateway.url, lines)
    # A preforking server of its own, so the sample has a worker group whatever else runs.
    with PreforkServer(8, 4, 2):
        sample = take_sample()

    sink.send(sample, SOURCE, DYNO)

    assert lines == []
    assert waiting(sink) == 0
    families = pushed_families(group_of(pushgateway.url, SOURCE))
    expected = line_values(sample)
    as_line = {}
    for name, family in families.items():
        assert name in PUSHGATEWAY, f"unexpected metric {name}"
        [series] = family["metrics"]
        assert series["labels"]["dyno"] == DYNO
        line_name, render = PUSHGATEWAY[name]
        as_line[line_name] = render(float(series["value"]))
        assert family["type"] == ("COUNTER" if name in PUSHGATEWAY_COUNTERS else "GAUGE"), name
        assert family["help"], name
    # Every metric of the agent's line, no more, with the same value to the printed digit.
    assert as_line == expected
    assert {"memory_rss", "tasks", "load_avg_1m", "agent_rss"} <= set(expected)
    assert {"memory_oom_kills", "workers", "worker_pss", "worker_uss"} <= set(expected)


def test_a_metric_the_next_sample_lacks_disappears_instead_of_keeping_an_old_value(
    pushgateway,
):
    lines = Reports()
    sink = pushgateway_sink(pushgateway.url, lines)
    sample = take_sample()
    sink.send(sample, "worker.3", DYNO)
    assert "dynostat_memory_rss_bytes" in pushed_families(group_of(pushgateway.url, "worker.3"))

    sample.memory = None
    sink.send(sample, "worker.3", DYNO)

    families = pushed_families(group_of(pushgateway.url, "worker.3"))
    assert not [name for name in families if name.startswith("dynostat_memory_")]
    assert "dynostat_tasks" in families
    assert lines == []


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
