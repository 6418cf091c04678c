"""The app's OpenTelemetry settings: where they send the push, and what they never do.

With ``DYNOSTAT_PUSH_PROTOCOL=otlp`` and ``DYNOSTAT_URL`` unset the push goes where the
standard ``OTEL_EXPORTER_OTLP_*`` variables point; ``DYNOSTAT_*`` wins over
``OTEL_EXPORTER_OTLP_METRICS_*``, which wins over ``OTEL_EXPORTER_OTLP_*``. They alone never
turn pushing on; a bad one is one line and a safe default; a header value is never printed.
"""

from __future__ import annotations

import gzip
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from otlp_bodies import JSON, PROTOBUF, parse, parse_received, points, resource
from push_python import run_python
from push_sample import DYNO, SOURCE, sink_from_env, take_sample
from push_servers import Reply

from dynostat import config, logfmt
from dynostat.push.settings import metrics_url
from dynostat.push.sink import OtlpProtocol
from support.reports import Reports

SECRET = "otel-header-s3cret"
OTLP_ON = {"DYNOSTAT_PUSH_PROTOCOL": "otlp"}
SAMPLE = take_sample(tree="captured dyno")


def lines_of(reports) -> str:
    return "\n".join(logfmt.line(report) for report in reports)


def push_settings(env: dict):
    cfg, errors = config.load(env)
    return cfg.push, errors


def test_the_apps_otel_settings_alone_never_turn_pushing_on():
    result = run_python(
        "import sys\n"
        "from push_sample import sink_from_env\n"
        "env = {'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://127.0.0.1:9',\n"
        "       'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT': 'http://127.0.0.1:9/v1/metrics',\n"
        "       'OTEL_EXPORTER_OTLP_HEADERS': 'k=v', 'OTEL_SERVICE_NAME': 'shop',\n"
        "       'OTEL_EXPORTER_OTLP_PROTOCOL': 'grpc', 'OTEL_SDK_DISABLED': 'maybe'}\n"
        "print(sink_from_env(env, 20, print), sorted(m for m in sys.modules if m.split('.')[0]\n"
        "      in ('http', 'ssl')), 'dynostat.push.settings' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "None [] False\n"


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://localhost:4318/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/mine/"}, "https://c/mine/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/mine?k=1"}, "https://c/mine/v1/metrics?k=1"),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://c/v1/metrics/"}, "https://c/v1/metrics/"),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318"}, "http://c:4318"),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://m/ingest",
             "OTEL_EXPORTER_OTLP_ENDPOINT": "https://general"},
            "https://m/ingest",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " ", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": ""},
         "http://localhost:4318/v1/metrics"),
    ],
)  # fmt: skip
def test_the_endpoint_comes_from_the_metrics_variable_as_is_else_the_general_one(env, url):
    settings_, errors = push_settings({**OTLP_ON, **env})
    assert errors == []
    assert (settings_.protocol, settings_.url) == ("otlp", url)


def test_the_spec_examples_of_endpoint_urls():
    # opentelemetry-specification, protocol/exporter.md: "Endpoint URLs for OTLP/HTTP".
    assert metrics_url("http://collector:4318") == "http://collector:4318/v1/metrics"
    assert metrics_url("http://collector:4318/mycollector/") == (
        "http://collector:4318/mycollector/v1/metrics"
    )


def test_an_explicit_dynostat_url_ignores_the_apps_exporter_settings(receiver):
    reports = Reports()
    env = {
        "DYNOSTAT_URL": receiver.url + "/v1/metrics",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:9/elsewhere",
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={SECRET}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "100",
        "OTEL_SDK_DISABLED": "true",
        "OTEL_SERVICE_NAME": "checkout",
    }
    sink = sink_from_env(env, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert reports == []
    assert sink.timeout == 5.0
    [received] = receiver.requests
    assert received.path == "/v1/metrics"
    assert "x-api-key" not in received.headers
    assert "Content-Encoding" not in received.headers
    assert received.headers["Content-Type"] == PROTOBUF
    # The resource still says who the app is: that is not where to push.
    assert resource(parse_received(received))["service.name"] == "checkout"


def test_the_pushgateway_never_reads_the_apps_otel_settings():
    settings_, errors = push_settings(
        {
            "DYNOSTAT_URL": "http://gateway:9091",
            "DYNOSTAT_PUSH_PROTOCOL": "pushgateway",
            "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={SECRET}",
            "OTEL_RESOURCE_ATTRIBUTES": "broken",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        }
    )
    assert errors == []
    assert (settings_.protocol, settings_.headers, settings_.resource) == ("pushgateway", {}, ())


@pytest.mark.parametrize(
    ("env", "headers"),
    [
        ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=two%20words"}, {"a": "1", "b": "two words"}),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "m=2"},
         {"m": "2"}),
        ({"OTEL_EXPORTER_OTLP_METRICS_HEADERS": "m=2", "DYNOSTAT_PUSH_HEADERS": "d=3"},
         {"d": "3"}),
        ({"OTEL_EXPORTER_OTLP_METRICS_HEADERS": " ", "OTEL_EXPORTER_OTLP_HEADERS": "a=1"},
         {"a": "1"}),
    ],
)  # fmt: skip
def test_headers_follow_dynostat_then_metrics_then_general(env, headers):
    settings_, errors = push_settings({**OTLP_ON, **env})
    assert errors == []
    assert settings_.headers == headers


@pytest.mark.parametrize(
    "var", ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"]
)
def test_a_bad_otel_header_is_named_by_its_variable_and_position_never_its_value(var):
    reports = Reports()
    sink = sink_from_env({**OTLP_ON, var: f"ok=1,{SECRET},x-bad=a%0D%0A{SECRET}"}, 20, reports)
    assert [(r["var"], r["entry"], r["reason"]) for r in reports] == [
        (var, 2, "missing_equals"),
        (var, 3, "bad_value"),
    ]
    assert "value" not in reports[0]
    assert SECRET not in lines_of(reports)
    assert sink is not None


@pytest.mark.parametrize(
    "var",
    ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"],
)
def test_a_bad_otel_endpoint_is_named_without_its_value_and_the_next_one_used(var):
    reports = Reports()
    env = {**OTLP_ON, var: f"ftp://user:{SECRET}@collector/v1/metrics"}
    if var.endswith("_METRICS_ENDPOINT"):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://general:4318"
    settings_, errors = push_settings(env)
    for fields in errors:
        reports(fields)

    expected_url, default = (
        ("https://general:4318/v1/metrics", "OTEL_EXPORTER_OTLP_ENDPOINT")
        if var.endswith("_METRICS_ENDPOINT")
        else ("http://localhost:4318/v1/metrics", "http://localhost:4318")
    )
    assert settings_.url == expected_url
    assert [(r["var"], r["reason"], r["default"]) for r in reports] == [
        (var, "scheme_not_http", default)
    ]
    assert SECRET not in lines_of(reports)


@pytest.mark.parametrize(
    ("env", "encoding"),
    [
        ({}, "protobuf"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "json"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "HTTP/JSON"}, "json"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
          "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"}, "protobuf"),
        ({"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json",
          "DYNOSTAT_PUSH_ENCODING": "protobuf"}, "protobuf"),
        ({"DYNOSTAT_PUSH_ENCODING": "JSON"}, "json"),
    ],
)  # fmt: skip
def test_the_encoding_follows_dynostat_then_metrics_then_general(env, encoding):
    settings_, errors = push_settings({**OTLP_ON, **env})
    assert errors == []
    assert settings_.encoding == encoding


@pytest.mark.parametrize(
    "var", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"]
)
def test_grpc_is_one_config_invalid_line_and_protobuf_over_http_instead(receiver, var):
    reports = Reports()
    env = {**OTLP_ON, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, var: "grpc"}
    sink = sink_from_env(env, 20, reports)

    sink.send(take_sample(), SOURCE, DYNO)

    assert [logfmt.line(r) for r in reports] == [
        f"at=error event=config_invalid var={var} value=grpc reason=grpc_not_supported"
        ' default=http/protobuf expected="http/protobuf or http/json"'
    ]
    [received] = receiver.requests
    assert received.headers["Content-Type"] == PROTOBUF
    assert points(parse_received(received))


def test_an_unknown_protocol_is_ignored_for_the_next_variable():
    settings_, errors = push_settings(
        {
            **OTLP_ON,
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/xml",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "DYNOSTAT_PUSH_ENCODING": "yaml",
        }
    )
    assert settings_.encoding == "json"
    assert [(e["var"], e["value"], e["default"]) for e in errors] == [
        ("DYNOSTAT_PUSH_ENCODING", "yaml", "json"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/xml", "http/json"),
    ]


@pytest.mark.parametrize(
    ("env", "compression"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, "gzip"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
          "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none"}, "none"),
        ({"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "GZIP",
          "DYNOSTAT_PUSH_COMPRESSION": "none"}, "none"),
        ({"DYNOSTAT_PUSH_COMPRESSION": "gzip"}, "gzip"),
    ],
)  # fmt: skip
def test_compression_follows_dynostat_then_metrics_then_general(env, compression):
    settings_, errors = push_settings({**OTLP_ON, **env})
    assert errors == []
    assert settings_.compression == compression


def test_a_bad_compression_is_one_line_and_none():
    settings_, errors = push_settings({**OTLP_ON, "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"})
    assert settings_.compression == "none"
    assert [(e["var"], e["value"], e["default"]) for e in errors] == [
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "none")
    ]


@pytest.mark.parametrize(
    ("env", "interval", "timeout"),
    [
        ({}, 20, 5.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "250"}, 20, 0.25),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "10000"}, 20, 5.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "10000"}, 2, 1.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}, 20, 5.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "900", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "300"},
         20, 0.3),
    ],
)  # fmt: skip
def test_the_otel_timeout_in_milliseconds_only_ever_shortens_the_agents_budget(
    env, interval, timeout
):
    reports = Reports()
    sink = sink_from_env({**OTLP_ON, **env}, interval, reports)
    assert reports == []
    assert sink.timeout == timeout


@pytest.mark.parametrize("value", ["-5", "10s", "1.5", "lots", "١٢"])
def test_a_bad_otel_timeout_is_one_line_and_the_agents_budget(value):
    reports = Reports()
    sink = sink_from_env({**OTLP_ON, "OTEL_EXPORTER_OTLP_TIMEOUT": value}, 20, reports)
    assert sink.timeout == 5.0
    assert [(r["var"], r["value"], r["default"]) for r in reports] == [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", value, "agent_budget")
    ]


def test_a_short_otel_timeout_bounds_a_hung_push(receiver):
    receiver.default = Reply(hang=5)
    reports = Reports()
    sink = sink_from_env(
        {
            **OTLP_ON,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
        },
        20,
        reports,
    )

    started = time.monotonic()
    sink.send(take_sample(), SOURCE, DYNO)
    took = time.monotonic() - started

    assert 0.25 <= took < 1.5
    assert [(r["event"], r["reason"]) for r in reports] == [("push_failed", "timeout")]


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_otel_sdk_disabled_turns_the_push_to_the_apps_settings_off(value):
    reports = Reports()
    sink = sink_from_env(
        {**OTLP_ON, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": value},
        20,
        reports,
    )
    assert sink is None
    assert [logfmt.line(r) for r in reports] == ["at=info event=push_off reason=otel_sdk_disabled"]


@pytest.mark.parametrize(("value", "complaint"), [("false", False), ("", False), ("yes", True)])
def test_otel_sdk_disabled_other_than_true_leaves_the_push_on(value, complaint):
    reports = Reports()
    sink = sink_from_env({**OTLP_ON, "OTEL_SDK_DISABLED": value}, 20, reports)
    assert sink is not None
    expected = [("OTEL_SDK_DISABLED", value, "false")] if complaint else []
    assert [(r["var"], r["value"], r["default"]) for r in reports] == expected


def test_gzip_from_the_otel_settings_reaches_the_collector(receiver):
    env = {
        **OTLP_ON,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
    }
    sink = sink_from_env(env, 20, print)

    sink.send(take_sample(), SOURCE, DYNO)

    [received] = receiver.requests
    assert received.headers["Content-Encoding"] == "gzip"
    assert received.headers["Content-Type"] == JSON
    assert points(parse(gzip.decompress(received.body), JSON))


# Values as they reach a dyno: any Unicode except NUL (and lone surrogates, which the
# environment never holds but as undecodable bytes: those are tested on their own).
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
# Every push variable but the URL (an explicit one would leave the OTel settings unread) and
# the protocol (drawn on its own, to hit the values that turn the push on).
PUSH_VARS = [
    var for var in config.PUSH_VARS if var not in ("DYNOSTAT_URL", "DYNOSTAT_PUSH_PROTOCOL")
]


@settings(max_examples=300, deadline=None, database=None)
@given(
    env=st.fixed_dictionaries(
        {"DYNOSTAT_PUSH_PROTOCOL": st.sampled_from(["otlp", "OTLP", "pushgateway"]) | VALUES},
        optional={var: VALUES for var in PUSH_VARS},
    )
)
def test_whatever_the_push_variables_hold_the_settings_are_safe_and_secrets_unprinted(env):
    # A secret in every header and endpoint variable, whatever else they hold.
    for var in config.SECRET_VARS - {"DYNOSTAT_URL"}:
        if var in env:
            env[var] = f"{env[var]}{SECRET}"
    cfg, errors = config.load(env)

    text = "\n".join(logfmt.line(fields) for fields in errors)
    assert SECRET not in text
    for fields in errors:
        assert fields["event"] in ("config_invalid", "push_off")
    if cfg.push is None:
        return
    assert cfg.push.protocol in ("otlp", "pushgateway")
    assert cfg.push.encoding in ("protobuf", "json")
    assert cfg.push.compression in ("gzip", "none")
    assert cfg.push.url.startswith(("http://", "https://"))
    if cfg.push.protocol == "otlp":
        # Whatever the resource settings hold, the request is one a collector parses.
        protocol = OtlpProtocol(
            cfg.push.url,
            cfg.dyno,
            "host",
            1e9,
            encoding=cfg.push.encoding,
            service_name=cfg.push.service_name,
            resource=cfg.push.resource,
        )
        request = parse(protocol.request(SAMPLE, SOURCE, DYNO, 0).body, protocol.content_type)
        assert resource(request)["service.name"]
