"""OTLP/HTTP JSON: what a collector receives, parsed with the official OTLP message classes."""

from __future__ import annotations

import socket

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from push_expected import OTLP
from push_sample import DYNO, SOURCE, line_values, sink_from_env, take_sample, waiting
from push_servers import Reply

from support.prefork import PreforkServer
from support.reports import Reports

APP = "zombie-farm-42"


def parse(body: bytes) -> ExportMetricsServiceRequest:
    # Strict: an unknown or misspelt field, a number where a string belongs, fails the test.
    return json_format.Parse(body, ExportMetricsServiceRequest(), ignore_unknown_fields=False)


def point_value(point):
    return point.as_int if point.WhichOneof("value") == "as_int" else point.as_double


def test_a_collector_receives_every_line_metric_with_its_unit_kind_and_resource(receiver):
    reports = Reports()
    env = {
        "DYNOSTAT_URL": receiver.url + "/v1/metrics",
        "HEROKU_APP_NAME": APP,
        "HEROKU_APP_ID": "9b1f6f7e-0000-4000-8000-0123456789ab",
    }
    sink = sink_from_env(env, 20, reports)
    # A preforking server of its own, so the sample has a worker group whatever else runs.
    with PreforkServer(8, 4, 2):
        sample = take_sample()

    sink.send(sample, SOURCE, DYNO)

    assert reports == []
    [received] = receiver.requests
    assert (received.method, received.path) == ("POST", "/v1/metrics")
    assert received.headers["Content-Type"] == "application/json"
    request = parse(received.body)
    [resource_metrics] = request.resource_metrics
    attributes = {
        attribute.key: attribute.value.string_value
        for attribute in resource_metrics.resource.attributes
    }
    assert attributes == {
        "service.name": APP,
        "heroku.app.id": env["HEROKU_APP_ID"],
        "cloud.provider": "heroku",
        "heroku.dyno": SOURCE,
        "service.instance.id": DYNO,
        "host.name": socket.gethostname(),
    }
    [scope_metrics] = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "dynostat"

    sample_ns = int(sample.wall_time * 1e9)
    as_line = {}
    for metric in scope_metrics.metrics:
        unit, kind, line_name, render = OTLP[metric.name]
        assert metric.unit == unit, metric.name
        assert metric.description, metric.name
        assert metric.WhichOneof("data") == kind, metric.name
        if kind == "sum":
            assert metric.sum.is_monotonic, metric.name
            assert metric.sum.aggregation_temporality == (
                AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
            )
            [point] = metric.sum.data_points
            assert 0 < point.start_time_unix_nano <= point.time_unix_nano
        else:
            [point] = metric.gauge.data_points
            assert point.start_time_unix_nano == 0
        assert abs(point.time_unix_nano - sample_ns) < 1000, "the sample's own time, in ns"
        value = point_value(point)
        if unit != "1" and metric.name != "dynostat.agent.cpu":
            assert point.WhichOneof("value") == "as_int", f"{metric.name} is a count"
        as_line[line_name] = render(value)
    assert as_line == line_values(sample)
    assert {"memory_oom_kills", "workers", "worker_pss", "worker_uss"} <= set(as_line)


def test_without_app_name_the_resource_has_no_service_name_and_sums_keep_one_start(receiver):
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url + "/v1/metrics"}, 20, print)
    first, second = take_sample(), take_sample()
    second.wall_time = first.wall_time + 20

    sink.send(first, SOURCE, DYNO)
    sink.send(second, SOURCE, DYNO)

    starts = set()
    for received in receiver.requests:
        [resource_metrics] = parse(received.body).resource_metrics
        keys = {attribute.key for attribute in resource_metrics.resource.attributes}
        assert "service.name" not in keys
        for metric in resource_metrics.scope_metrics[0].metrics:
            if metric.WhichOneof("data") == "sum":
                starts.add(metric.sum.data_points[0].start_time_unix_nano)
    # A cumulative series keeps one start time, or backends would see a counter reset.
    assert len(receiver.requests) == 2
    assert len(starts) == 1


def test_a_metric_missing_from_the_sample_is_left_out_not_sent_as_zero(receiver):
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url + "/v1/metrics"}, 20, print)
    sample = take_sample()
    sample.memory = None
    sample.load = None

    sink.send(sample, SOURCE, DYNO)

    [received] = receiver.requests
    names = {
        metric.name for metric in parse(received.body).resource_metrics[0].scope_metrics[0].metrics
    }
    assert not [name for name in names if name.startswith(("dynostat.memory", "dynostat.load"))]
    assert "dynostat.tasks" in names


def test_a_partial_success_answer_is_reported_without_resending(receiver):
    reports = Reports()
    receiver.script.append(
        Reply(200, {"Content-Type": "application/json"},
              b'{"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"no"}}')
    )  # fmt: skip
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url + "/v1/metrics"}, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert waiting(sink) == 0
    assert [(r["event"], r["reason"], r["rejected_points"]) for r in reports] == [
        ("push_failed", "partially_rejected", 3)
    ]
