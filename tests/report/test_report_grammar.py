"""The report reads dynostat's logfmt grammar as the agent writes it, old and new escapes
alike, and Heroku's envelopes in every shape they arrive in."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat import logfmt as agent_logfmt
from dynostat.output import Formatter
from dynostat.sample import Culprit, Sample, Tasks
from dynostat_report import envelope, logfmt
from dynostat_report.logfmt import TopEntry

HOSTILE_COMMS = [
    "plain",
    "with space",
    "a,b",
    "a:b",
    "a/b",
    'quote"d',
    "back\\slash",
    "tab\there",
    "new\nline",
    "é ü",
    "emoji 🧟",
    "a=b",
    ",:,:",
    "</script>",
    "\x1b[31mred",
]


# -- values ---------------------------------------------------------------------------------


def test_pairs_read_bare_values_and_skip_words_without_equals():
    assert logfmt.pairs("source=web.1 junk dyno=a=b sample#x=1.5MB") == [
        ("source", "web.1"),
        ("dyno", "a=b"),
        ("sample#x", "1.5MB"),
    ]


def test_a_quoted_value_is_a_json_string():
    message = r'at=warn comm="puma: cluster \"w\" \\ \n\t\u00e9 \ud83e\udddf" pid=8'
    assert dict(logfmt.pairs(message)) == {
        "at": "warn",
        "comm": 'puma: cluster "w" \\ \n\té 🧟',
        "pid": "8",
    }


def test_older_escapes_xnn_and_big_u_are_read_too():
    assert logfmt.unquote(r'"a\x2cb \U0001f9df \x07"') == "a,b 🧟 \x07"


def test_an_unknown_escape_and_a_lone_surrogate_stay_visible():
    assert logfmt.unescape(r"a\qb") == r"a\qb"
    assert logfmt.unescape(r"x\ud800y") == "x\ufffdy"


def test_an_unterminated_quote_still_yields_the_pairs_before_it():
    found = dict(logfmt.pairs('source=web.1 comm="never closed pid=8'))
    assert found["source"] == "web.1"
    assert found["comm"] == '"never'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("211.52MB", (211.52, "MB")),
        ("87", (87.0, "")),
        ("-3", (-3.0, "")),
        ("123pages", (123.0, "pages")),
        ("1.20ms", (1.2, "ms")),
        ("MB", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        ("1.2.3MB", None),
    ],
)
def test_numbers_with_units(text, expected):
    assert logfmt.number(text) == expected


# -- top# lists -----------------------------------------------------------------------------


def test_top_entries_split_on_commas_then_first_slash_and_last_colon():
    value = r"8/leaky_worker:210,9/a\u002cb\u003ac:3,10/x/y:4.50MB"
    assert logfmt.top_entries(value) == [
        TopEntry(8, "leaky_worker", 210.0, ""),
        TopEntry(9, "a,b:c", 3.0, ""),
        TopEntry(10, "x/y", 4.5, "MB"),
    ]


def test_top_entries_read_the_older_comma_escape_and_skip_malformed_entries():
    value = r"8/a\x2cb:3,notapid/x:1,9/nocolon,10/ok:2,,11/bad:zz"
    assert logfmt.top_entries(value) == [TopEntry(8, "a,b", 3.0, ""), TopEntry(10, "ok", 2.0, "")]


@pytest.mark.parametrize("comm", HOSTILE_COMMS)
def test_the_agents_own_top_line_reads_back_to_the_same_comm(comm):
    sample = Sample(
        wall_time=1795755600.0,
        tasks=Tasks(tasks=10, processes=3, threads=10, zombies=5, limit=256),
        zombie_parents=[Culprit(8, comm, 5), Culprit(9, "sh", 1)],
    )
    top_line = Formatter("web.1", "d-1").sample_lines(sample)[-1]
    found = dict(logfmt.pairs(top_line))
    entries = logfmt.top_entries(found["top#zombie_parents"])
    assert [(e.pid, e.comm, e.value) for e in entries] == [(8, comm, 5.0), (9, "sh", 1.0)]


@pytest.mark.parametrize("comm", HOSTILE_COMMS)
def test_the_agents_own_warning_reads_back_to_the_same_comm(comm):
    line = Formatter("web.1", "d-1").event_line(
        {"at": "warn", "event": "tasks_near_limit", "pid": 8, "comm": comm}
    )
    assert dict(logfmt.pairs(line))["comm"] == comm


@given(st.text(min_size=1, max_size=30))
def test_any_quoted_value_the_agent_writes_reads_back(text):
    message = f"at=warn {agent_logfmt.pair('comm', text)} pid=1"
    assert dict(logfmt.pairs(message))["comm"] == text


@given(st.text(max_size=30))
def test_any_json_string_reads_back(text):
    assert logfmt.unquote(json.dumps(text)) == text


# -- envelopes ------------------------------------------------------------------------------

T0 = datetime(2026, 11, 27, 5, 27, 22, 35388, tzinfo=timezone.utc).timestamp()


def test_heroku_logs_text():
    found = envelope.parse("2026-11-27T05:27:22.035388+00:00 app[web.1]: source=web.1 x=1")
    assert found[1:] == ("app", "web.1", "source=web.1 x=1")
    assert found[0] == pytest.approx(T0, abs=1e-6)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-27T05:27:22.035388Z",
        "2026-11-27T06:27:22.035388+01:00",
        "2026-11-26T21:27:22.035388-08:00",
        "2026-11-27T05:27:22.035388+0000",
        "2026-11-27T05:27:22.035388",
        "2026-11-27T05:27:22.035388000Z",
    ],
)
def test_times_in_any_zone_and_precision_mean_the_same_moment(stamp):
    found = envelope.parse(f"{stamp} heroku[router]: at=info")
    assert found[0] == pytest.approx(T0, abs=1e-6)


def test_a_time_with_a_host_before_the_emitter_as_syslog_servers_write_it():
    found = envelope.parse("2026-11-27T05:27:22.035388+00:00 d.1ab2 app[web.1]: hello")
    assert found[1:] == ("app", "web.1", "hello")


def test_an_app_message_that_looks_like_an_envelope_is_not_taken_for_one():
    line = "2026-11-27T05:27:22Z app[web.1]: leaky_worker[8]: fork failed: EAGAIN"
    assert envelope.parse(line)[1:] == ("app", "web.1", "leaky_worker[8]: fork failed: EAGAIN")


def test_logplex_rfc5424_frame_with_and_without_structured_data():
    plain = "<190>1 2026-11-27T05:27:22.035388+00:00 host app web.1 - State changed"
    assert envelope.parse(plain)[1:] == ("app", "web.1", "State changed")
    # Inside a structured-data value RFC 5424 escapes "]" as "\]".
    with_sd = r'<190>1 2026-11-27T05:27:22Z host heroku router - [meta a="\]b"][x@1 y="1"] at=info'
    assert envelope.parse(with_sd)[1:] == ("heroku", "router", "at=info")


def test_a_papertrail_style_archive_line():
    line = "\t".join(
        [
            "1",
            "2026-11-27 05:27:22",
            "2026-11-27 05:27:23",
            "42",
            "myapp",
            "1.2.3.4",
            "User",
            "Info",
            "heroku/web.1",
            "Error R14 (Memory quota exceeded)\twith a tab",
        ]
    )
    found = envelope.parse(line)
    assert found[1:] == ("heroku", "web.1", "Error R14 (Memory quota exceeded)\twith a tab")
    assert found[0] == pytest.approx(int(T0))


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello world",
        "2026-11-27T05:27:2",  # cut in the time
        "2026-11-27T05:27:22.035388+00:00 app[web.1",  # cut in the envelope
        "2026-13-27T05:27:22Z app[web.1]: month 13",
        "2026-11-27T25:27:22Z app[web.1]: hour 25",
        "2026-11-27T05:27:99Z app[web.1]: second 99",
        "<190>1 - host app web.1 - no time",
        "<190>1 2026-11-27T05:27:22Z",
        "source=web.1 dyno=x sample#dynostat.tasks=3",
        "1\t2\t3",
    ],
)
def test_lines_without_a_readable_envelope(line):
    assert envelope.parse(line) is None
