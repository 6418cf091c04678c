"""OTLP/HTTP: what a collector receives, parsed strictly with the official OTLP message classes.

Both encodings (protobuf, the default, and JSON), the resource OpenTelemetry's Heroku
conventions ask for, every metric's name, unit, kind, temporality and attributes, one start
time per cumulative series, and the answers a collector gives.
"""

from __future__ import annotations

import socket

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from otlp_bodies import JSON, PROTOBUF, parse, parse_received, point_value, points, resource
from otlp_bodies import response as otlp_response
from push_expected import AGENT_CPU, OTLP
from push_sample import (
    DYNO,
    NOT_CAPTURED,
    SOURCE,
    TREES,
    pushed_values,
    sink_from_env,
    take_sample,
    waiting,
)
from push_servers import Reply

from dynostat.config import Dyno
from dynostat.push.sink import OtlpProtocol
from dynostat.sample import Memory
from support.prefork import PreforkServer
from support.reports import Reports

APP = "zombie-farm-42"
METADATA = {
    "DYNO": SOURCE,
    "HEROKU_APP_NAME": APP,
    "HEROKU_APP_ID": "9b1f6f7e-0000-4000-8000-0123456789ab",
    "HEROKU_DYNO_ID": DYNO,
    "HEROKU_RELEASE_VERSION": "v42",
    "HEROKU_SLUG_COMMIT": "2c3a0b7d9f1e4d5c6b7a8f9e0d1c2b3a4f5e6d7c",
    "HEROKU_RELEASE_CREATED_AT": "2026-11-27T05:27:22Z",
}
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def received_request(receiver):
    [received] = receiver.requests
    return received, parse_received(received)


@pytest.mark.parametrize("tree", list(TREES))
@pytest.mark.parametrize(
    ("encoding_var", "content_type"), [(None, PROTOBUF), ("protobuf", PROTOBUF), ("json", JSON)]
)
def test_a_collector_receives_every_line_metric_with_its_name_unit_kind_and_resource(
    receiver, tree, encoding_var, content_type
):
    reports = Reports()
    env = {"DYNOSTAT_URL": receiver.url + "/v1/metrics", **METADATA}
    if encoding_var is not None:
        env["DYNOSTAT_PUSH_ENCODING"] = encoding_var
    sink = sink_from_env(env, 20, reports)
    # A preforking server of its own, so a sample of this machine has a worker group whatever
    # else runs.
    with PreforkServer(8, 4, 2):
        sample = take_sample(tree=tree)

    sink.send(sample, SOURCE, DYNO)

    assert reports == []
    received, request = received_request(receiver)
    assert (received.method, received.path) == ("POST", "/v1/metrics")
    assert received.headers["Content-Type"] == content_type
    assert "Content-Encoding" not in received.headers
    # The Heroku resource conventions, from dyno metadata, plus the dyno's name and host.
    assert resource(request) == {
        "service.name": APP,
        "service.instance.id": DYNO,
        "service.version": "v42",
        "heroku.app.id": METADATA["HEROKU_APP_ID"],
        "heroku.release.commit": METADATA["HEROKU_SLUG_COMMIT"],
        "heroku.release.creation_timestamp": "2026-11-27T05:27:22Z",
        "cloud.provider": "heroku",
        "heroku.dyno.name": SOURCE,
        "host.name": socket.gethostname(),
    }
    scope = request.resource_metrics[0].scope_metrics[0].scope
    assert scope.name == "dynostat"
    assert scope.version

    sample_ns = int(sample.wall_time * 1e9)
    as_line = {}
    for (name, attributes), (metric, point) in points(request).items():
        unit, data, monotonic, line_name, render = OTLP[(name, attributes)]
        assert metric.unit == unit, name
        assert metric.description, name
        assert metric.WhichOneof("data") == data, name
        if data == "sum":
            assert metric.sum.is_monotonic == monotonic, name
            assert metric.sum.aggregation_temporality == CUMULATIVE, name
            assert 0 < point.start_time_unix_nano <= point.time_unix_nano, name
        else:
            assert point.start_time_unix_nano == 0, name
        assert abs(point.time_unix_nano - sample_ns) < 1000, "the sample's own time, in ns"
        if data == "sum" and unit != "s":
            assert point.WhichOneof("value") == "as_int", f"{name} is a count"
        as_line[line_name] = render(point_value(point))
    # Every metric of the agent's line, no more, with the same value to the printed digit.
    assert as_line == pushed_values(sample)
    if tree == "captured dyno":
        every = {line_name for _, _, _, line_name, _ in OTLP.values()} - {AGENT_CPU}
        assert set(as_line) - {AGENT_CPU} == every - NOT_CAPTURED
    if tree == "this machine":
        assert {"memory_oom_kills", "workers", "worker_pss", "worker_uss"} <= set(as_line)


def test_both_encodings_carry_the_very_same_request():
    sample = take_sample(tree="captured dyno")
    requests = []
    for encoding, content_type in (("protobuf", PROTOBUF), ("json", JSON)):
        protocol = OtlpProtocol(
            "http://collector/v1/metrics", Dyno(name=SOURCE), "host", 1e9, encoding=encoding
        )
        assert protocol.content_type == content_type
        requests.append(parse(protocol.request(sample, SOURCE, DYNO, 7).body, content_type))
    assert requests[0] == requests[1]
    assert points(requests[0])[("dynostat.push.dropped", ())][1].as_int == 7


def counter_starts(request) -> dict[str, int]:
    return {
        name: point.start_time_unix_nano
        for (name, _), (metric, point) in points(request).items()
        if metric.WhichOneof("data") == "sum"
    }


def test_a_cumulative_series_keeps_its_start_until_its_counter_goes_down():
    protocol = OtlpProtocol("http://collector/v1/metrics", Dyno(name=SOURCE), "host", 1000.0)
    samples = [take_sample(tree="captured dyno") for _ in range(3)]
    for index, sample in enumerate(samples):
        sample.wall_time = 1000.0 + 20 * (index + 1)
    memory = samples[0].memory
    samples[1].memory = memory.replace(pgpgin=memory.pgpgin + 50, pgpgout=memory.pgpgout + 5)
    # The cgroup's page-in counter went down between the second and third sample: reset.
    samples[2].memory = memory.replace(pgpgin=10, pgpgout=memory.pgpgout + 9, rss=1024)

    starts = [
        counter_starts(parse(protocol.request(sample, SOURCE, DYNO, 0).body)) for sample in samples
    ]

    start_ns = 1000 * 10**9
    assert set(starts[0].values()) == {start_ns}, "every sum starts when the push started"
    assert starts[1] == starts[0], "a counter that kept counting keeps its start"
    reset = {**starts[0], "dynostat.memory.pgpgin": 1040 * 10**9}
    assert starts[2] == reset, "a reset counter starts again from the previous sample"
    # An amount that went down (rss, an up-down sum) is no reset: its start stays.
    assert starts[2]["system.memory.usage"] == start_ns


def test_a_sum_never_starts_after_its_own_point():
    # A sample taken (by the wall clock) before the push started, as after a clock step.
    protocol = OtlpProtocol("http://collector/v1/metrics", Dyno(), "host", 5000.0)
    sample = take_sample()
    sample.wall_time = 4000.0
    for _, point in points(parse(protocol.request(sample, SOURCE, DYNO, 0).body)).values():
        assert point.start_time_unix_nano <= point.time_unix_nano


def test_without_metadata_service_name_is_unknown_service_and_no_heroku_ids(receiver):
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url + "/v1/metrics"}, 20, print)

    sink.send(take_sample(), "local", "vm-1")

    _, request = received_request(receiver)
    assert resource(request) == {
        "service.name": "unknown_service:dynostat",
        "service.instance.id": "vm-1",
        "host.name": socket.gethostname(),
    }


@pytest.mark.parametrize(
    ("env", "service_name"),
    [
        ({}, APP),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes"}, "from-attributes"),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes", "OTEL_SERVICE_NAME": "x"},
            "x",
        ),
        ({"OTEL_SERVICE_NAME": " checkout "}, "checkout"),
        ({"OTEL_SERVICE_NAME": " "}, APP),
    ],
)
def test_service_name_comes_from_otel_then_the_app_name(receiver, env, service_name):
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url, **METADATA, **env}, 20, print)

    sink.send(take_sample(), SOURCE, DYNO)

    assert resource(received_request(receiver)[1])["service.name"] == service_name


def test_otel_resource_attributes_are_merged_over_the_detected_ones(receiver):
    reports = Reports()
    env = {
        "DYNOSTAT_URL": receiver.url,
        **METADATA,
        "OTEL_RESOURCE_ATTRIBUTES": (
            " deployment.environment.name = production ,service.version=2026.11%2C3,"
            "team=z%C3%B6mbies%3Dgone,,service.namespace=shop"
        ),
    }
    sink = sink_from_env(env, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert reports == []
    attributes = resource(received_request(receiver)[1])
    assert attributes["deployment.environment.name"] == "production"
    assert attributes["service.version"] == "2026.11,3", "what the user set wins over detection"
    assert attributes["team"] == "zömbies=gone"
    assert attributes["service.namespace"] == "shop"
    assert attributes["service.name"] == APP
    assert attributes["heroku.app.id"] == METADATA["HEROKU_APP_ID"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("team=a,broken,service.version=9", "missing_equals"),
        ("team=%zz", "bad_percent_encoding"),
        ("team=%C3", "bad_percent_encoding"),
        ("=value", "empty_key"),
        ("k=" + "v" * 20000, "too_long"),
    ],
)
def test_a_bad_otel_resource_attributes_is_one_line_and_discarded_whole(receiver, value, reason):
    reports = Reports()
    env = {"DYNOSTAT_URL": receiver.url, **METADATA, "OTEL_RESOURCE_ATTRIBUTES": value}
    sink = sink_from_env(env, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert [(r["event"], r["var"], r["reason"], r["default"]) for r in reports] == [
        ("config_invalid", "OTEL_RESOURCE_ATTRIBUTES", reason, "none")
    ]
    attributes = resource(received_request(receiver)[1])
    assert "team" not in attributes
    assert attributes["service.version"] == "v42"


def test_a_resource_value_that_is_not_utf8_is_sent_as_valid_text(receiver):
    # Environment bytes that are not UTF-8 reach Python as lone surrogates.
    env = {"DYNOSTAT_URL": receiver.url, **METADATA, "HEROKU_APP_NAME": "shop\udcff\udcfe"}
    sink = sink_from_env(env, 20, print)

    sink.send(take_sample(), SOURCE, DYNO)

    assert resource(received_request(receiver)[1])["service.name"] == "shop\ufffd\ufffd"


def test_a_metric_missing_from_the_sample_is_left_out_not_sent_as_zero(receiver):
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url + "/v1/metrics"}, 20, print)
    sample = take_sample(tree="captured dyno")
    sample.memory = Memory(rss=4096, cache=None, swap=None, pgpgin=None, pgpgout=None, quota=None)
    sample.load = None

    sink.send(sample, SOURCE, DYNO)

    keys = set(points(received_request(receiver)[1]))
    assert ("system.memory.usage", (("system.memory.state", "used"),)) in keys
    assert ("system.memory.usage", (("system.memory.state", "cached"),)) not in keys
    assert not [name for name, _ in keys if name.startswith(("system.cpu", "system.paging"))]
    assert ("system.memory.limit", ()) not in keys
    assert ("dynostat.tasks", ()) in keys


def test_gzip_on_request_compresses_the_body_and_says_so(receiver):
    env = {"DYNOSTAT_URL": receiver.url + "/v1/metrics", "DYNOSTAT_PUSH_COMPRESSION": "gzip"}
    sink = sink_from_env(env, 20, print)
    sample = take_sample()

    sink.send(sample, SOURCE, DYNO)

    received, request = received_request(receiver)
    assert received.headers["Content-Encoding"] == "gzip"
    assert received.body[:2] == b"\x1f\x8b"
    assert ("dynostat.tasks", ()) in points(request)


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, {"Content-Type": PROTOBUF}, otlp_response(rejected=3, message="too old")),
        Reply(200, {"Content-Type": JSON},
              b'{"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"no"}}'),
        Reply(200, {}, b'{"partialSuccess":{"rejectedDataPoints":3}}'),
    ],
    ids=["protobuf", "json", "json without a content type"],
)  # fmt: skip
def test_a_partial_success_answer_is_reported_without_resending(receiver, encoding, reply):
    reports = Reports()
    receiver.script.append(reply)
    env = {"DYNOSTAT_URL": receiver.url + "/v1/metrics", "DYNOSTAT_PUSH_ENCODING": encoding}
    sink = sink_from_env(env, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert waiting(sink) == 0
    assert [(r["event"], r["reason"], r["rejected_points"]) for r in reports] == [
        ("push_failed", "partially_rejected", 3)
    ]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, {"Content-Type": PROTOBUF}, otlp_response()),
        Reply(200, {"Content-Type": PROTOBUF}, otlp_response(rejected=0, message="warning")),
        Reply(200, {}, b""),
        Reply(200, {}, b"{}"),
        Reply(200, {"Content-Type": JSON}, b"{}"),
    ],
    ids=["protobuf", "a warning", "empty", "{} without a content type", "json"],
)
def test_a_full_success_answer_prints_nothing(receiver, reply):
    reports = Reports()
    receiver.script.append(reply)
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url + "/v1/metrics"}, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert (waiting(sink), reports) == (0, [])


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x05\x08",  # a partial success cut short
        b"\x0a\x02\x08\xff",  # a varint that never ends
        b"\x0b",  # a group, which OTLP never uses
        b"\x08\x01",  # field 1 as a number, not a message
        b"\x0a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a negative count
        b"OK",
    ],
)
def test_a_2xx_answer_that_is_not_an_otlp_response_is_a_bad_response(receiver, body):
    reports = Reports()
    receiver.script.append(Reply(200, {"Content-Type": PROTOBUF}, body))
    sink = sink_from_env({"DYNOSTAT_URL": receiver.url + "/v1/metrics"}, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert waiting(sink) == 0, "the endpoint took the sample; its answer is what is wrong"
    assert [(r["reason"], r["status"]) for r in reports] == [("bad_response", 200)]
