"""Push config: off by default without paying for its HTTP stack; bad values stay safe."""

from __future__ import annotations

import pytest
from push_python import run_python
from push_sample import sink_from_env

from dynostat import logfmt
from dynostat.push.settings import parse_headers
from support.reports import Reports


def test_without_a_url_there_is_no_sink_and_the_http_stack_is_never_imported():
    result = run_python(
        "import sys\n"
        "from push_sample import sink_from_env\n"
        "sink = sink_from_env({'DYNOSTAT_PUSH_PROTOCOL': 'pushgateway'}, 20, print)\n"
        "print(sink, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('requests', 'urllib3', 'http', 'dns', 'ssl', 'certifi')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "None []\n"


def test_with_a_url_the_http_stack_is_imported_only_then():
    result = run_python(
        "import sys\n"
        "from push_sample import sink_from_env\n"
        "print('http.client' in sys.modules, 'ssl' in sys.modules)\n"
        "sink = sink_from_env({'DYNOSTAT_URL': 'http://127.0.0.1:9/v1/metrics'}, 20, print)\n"
        "print('http.client' in sys.modules, 'ssl' in sys.modules, type(sink).__name__,"
        " sink.timeout)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('requests', 'urllib3', 'dns', 'certifi')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "False False\nTrue True Sink 5.0\n[]\n"


@pytest.mark.parametrize("package", ["ssl", "http.client"])
def test_without_a_module_the_push_needs_push_is_off_with_one_error_line(package):
    result = run_python(
        "import sys\n"
        f"sys.modules[{package!r}] = None  # what an import of a missing module meets\n"
        "from push_sample import sink_from_env\n"
        "print(sink_from_env({'DYNOSTAT_URL': 'https://collector:4318/v1/metrics'}, 20, print))\n"
    )
    assert result.returncode == 0, result.stderr
    [error, sink] = result.stdout.splitlines()
    assert error.startswith(
        "{'at': 'error', 'event': 'push_unavailable', 'reason': 'dependency_missing',"
        f" 'module': '{package}"
    )
    assert sink == "None"
    assert "Traceback" not in result.stderr


def test_a_dependency_that_breaks_on_import_turns_push_off_with_one_error_line():
    result = run_python(
        "import http.client\n"
        "del http.client.HTTPException  # a standard library unlike any the sink knows\n"
        "from push_sample import sink_from_env\n"
        "print(sink_from_env({'DYNOSTAT_URL': 'https://collector:4318/v1/metrics'}, 20, print))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "{'at': 'error', 'event': 'push_unavailable', 'reason': 'dependency_unusable',"
        " 'error': 'AttributeError'}",
        "None",
    ]


@pytest.mark.parametrize(
    ("interval", "timeout"), [(1, 0.5), (4, 2.0), (10, 5.0), (20, 5.0), (3600, 5.0)]
)
def test_the_time_one_send_may_take_is_the_lower_of_5_s_and_half_the_interval(interval, timeout):
    sink = sink_from_env({"DYNOSTAT_URL": "http://127.0.0.1:9/"}, interval, print)
    assert sink.timeout == timeout


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://dyno:pa55w0rd-in-url@files.example/", "scheme_not_http"),
        ("collector:4318/v1/metrics", "scheme_not_http"),
        ("https://:pa55w0rd-in-url@/v1/metrics", "no_host"),
        ("http://dyno:pa55w0rd-in-url@collector:99999/v1", "unparsable"),
    ],
)
def test_a_bad_url_turns_push_off_and_is_named_without_its_value(url, reason):
    reports = Reports()
    assert sink_from_env({"DYNOSTAT_URL": url}, 20, reports) is None
    assert reports == [
        {
            "at": "error",
            "event": "config_invalid",
            "var": "DYNOSTAT_URL",
            "reason": reason,
            "default": "push_off",
            "expected": "an http or https URL",
        }
    ]


def test_an_unknown_protocol_is_named_and_otlp_used():
    reports = Reports()
    sink = sink_from_env(
        {"DYNOSTAT_URL": "http://127.0.0.1:9/", "DYNOSTAT_PUSH_PROTOCOL": "graphite"},
        20,
        reports,
    )
    assert sink.protocol.name == "otlp"
    assert [logfmt.line(report) for report in reports] == [
        "at=error event=config_invalid var=DYNOSTAT_PUSH_PROTOCOL value=graphite default=otlp"
        ' expected="otlp or pushgateway"'
    ]


def test_the_protocol_name_is_read_case_blind():
    env = {"DYNOSTAT_URL": "http://127.0.0.1:9/", "DYNOSTAT_PUSH_PROTOCOL": " PushGateway "}
    assert sink_from_env(env, 20, print).protocol.name == "pushgateway"


def test_headers_keep_good_entries_and_name_bad_ones_by_position_only():
    reports: list = []
    headers = parse_headers(
        "Authorization=Basic dXNlcjpzZWNyZXQ=,"
        "Bearer naked-s3cret,"
        "Bad Name=naked-s3cret,"
        "X-Evil=naked-s3cret%0D%0AX-Injected: 1,"
        "X-List=a%2Cb%20c,"
        "X-Accent=na%C3%AFve-s3cret,"
        " ,",
        reports,
    )
    assert headers == {"Authorization": "Basic dXNlcjpzZWNyZXQ=", "X-List": "a,b c"}
    assert [(r["var"], r["entry"], r["reason"]) for r in reports] == [
        ("DYNOSTAT_PUSH_HEADERS", 2, "missing_equals"),
        ("DYNOSTAT_PUSH_HEADERS", 3, "bad_name"),
        ("DYNOSTAT_PUSH_HEADERS", 4, "bad_value"),
        ("DYNOSTAT_PUSH_HEADERS", 6, "bad_value"),
    ]
    assert "s3cret" not in "\n".join(logfmt.line(report) for report in reports)


@pytest.mark.parametrize("value", ["lots", "-1", "1001", "3.5"])
def test_a_bad_buffer_size_is_named_and_30_used(value):
    reports = Reports()
    sink = sink_from_env(
        {"DYNOSTAT_URL": "http://127.0.0.1:9/", "DYNOSTAT_PUSH_BUFFER": value},
        20,
        reports,
    )
    assert sink.buffer_size == 30
    assert [(r["var"], r["value"], r["default"]) for r in reports] == [
        ("DYNOSTAT_PUSH_BUFFER", value, "30")
    ]
