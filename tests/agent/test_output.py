"""The lines users and their log parsers see: exact bytes, quoting, absent metrics, JSON."""

from __future__ import annotations

import json

import logfmtkv
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat import logfmt, procfs
from dynostat.alerts import Alerts
from dynostat.output import (
    Formatter,
    Quantity,
    culprit_comm,
    megabytes,
    plain_text,
)
from dynostat.sample import Culprit, LoadAvg, Memory, Sample, Tasks, Workers
from support import readme_decoder

MB = 1024 * 1024
HEAD = "source=web.1 dyno=d-1"


def mb(value: float) -> int:
    return round(value * MB)


def full_sample() -> Sample:
    return Sample(
        wall_time=1764219600.25,
        load=LoadAvg(0.12, 0.1, 0.05),
        memory=Memory(
            rss=mb(201.23),
            cache=mb(10.29),
            swap=0,
            pgpgin=123,
            pgpgout=45,
            quota=512 * MB,
            oom_kills=2,
        ),
        tasks=Tasks(tasks=87, processes=12, threads=87, zombies=59, limit=256),
        zombie_parents=[Culprit(1234, "ruby", 57), Culprit(99, "sh", 2)],
        top_threads=[Culprit(1234, "ruby", 40), Culprit(7, "sleep", 1)],
        top_rss=[Culprit(1234, "ruby", mb(201.23)), Culprit(99, "sh", mb(1.5))],
        top_pss=[Culprit(1234, "ruby", mb(150.5)), Culprit(99, "sh", 0)],
        workers=Workers(
            pid=1234,
            comm="ruby",
            workers=4,
            worker_pss=mb(47.4),
            worker_uss=mb(30.2),
            parent_pss=mb(52.1),
            fits=9,
        ),
        agent_rss=mb(8.1),
        agent_cpu_ms=1.2,
    )


# -- reading what we write with the README's decoder, so tests check meaning as well as bytes --


def parse_logfmt(line: str) -> dict[str, str]:
    """The README's decoder, after checking that it used up the whole line: every byte of a
    line belongs to one of its pairs, so nothing a parser would skip can hide in it."""
    decoded = readme_decoder.fields(line)
    rebuilt = " ".join(f"{key}={logfmt.quote(value)}" for key, value in decoded.items())
    assert rebuilt == line, line
    return decoded


def parse_culprits(value: str) -> list[tuple[int, str, str]]:
    return readme_decoder.top(value)


# -- logfmt lines -----------------------------------------------------------------------------


def test_a_full_sample_prints_the_four_lines_of_the_design_byte_for_byte():
    lines = Formatter("web.1", "d-1").sample_lines(full_sample())
    assert lines == [
        f"{HEAD} sample#dynostat.load_avg_1m=0.12 sample#dynostat.load_avg_5m=0.10"
        " sample#dynostat.load_avg_15m=0.05",
        f"{HEAD} sample#dynostat.memory_total=211.52MB sample#dynostat.memory_rss=201.23MB"
        " sample#dynostat.memory_cache=10.29MB sample#dynostat.memory_swap=0.00MB"
        " sample#dynostat.memory_pgpgin=123pages sample#dynostat.memory_pgpgout=45pages"
        " sample#dynostat.memory_quota=512.00MB sample#dynostat.memory_oom_kills=2",
        f"{HEAD} sample#dynostat.tasks=87 sample#dynostat.tasks_limit=256"
        " sample#dynostat.processes=12 sample#dynostat.threads=87 sample#dynostat.zombies=59"
        " sample#dynostat.agent_rss=8.10MB sample#dynostat.agent_cpu=1.20ms",
        f"{HEAD} top#zombie_parents=1234/ruby:57,99/sh:2 top#threads=1234/ruby:40"
        " top#rss=1234/ruby:201.23MB,99/sh:1.50MB top#pss=1234/ruby:150.50MB",
    ]


def test_an_empty_prefix_gives_the_drop_in_log_runtime_metrics_names():
    lines = Formatter("web.1", "d-1", prefix="").sample_lines(full_sample())
    assert lines[0].startswith(f"{HEAD} sample#load_avg_1m=0.12 sample#load_avg_5m=0.10")
    assert " sample#memory_total=211.52MB " in lines[1]
    assert "dynostat." not in "".join(lines[:3])


def test_push_dropped_is_printed_only_when_the_sample_carries_it():
    sample = full_sample()
    assert "push_dropped" not in "".join(Formatter("web.1", "d-1").sample_lines(sample))
    sample.push_dropped = 4
    tasks_line = Formatter("web.1", "d-1").sample_lines(sample)[2]
    assert tasks_line.endswith(" sample#dynostat.agent_cpu=1.20ms sample#dynostat.push_dropped=4")


def test_a_metric_whose_source_is_missing_is_left_out_never_printed_as_zero():
    sample = Sample(
        wall_time=0.0,
        memory=Memory(rss=None, cache=mb(3), pgpgin=None, quota=None),
        tasks=Tasks(tasks=5, processes=5, threads=5, zombies=0, limit=None),
    )
    lines = Formatter("web.1", "d-1").sample_lines(sample)
    assert lines == [
        f"{HEAD} sample#dynostat.memory_cache=3.00MB",
        f"{HEAD} sample#dynostat.tasks=5 sample#dynostat.processes=5 sample#dynostat.threads=5"
        " sample#dynostat.zombies=0",
    ]


def test_task_counts_that_proc_could_not_give_are_left_out_and_the_cgroup_s_count_stays():
    sample = Sample(
        wall_time=0.0,
        tasks=Tasks(tasks=31, processes=None, threads=None, zombies=None, limit=256),
    )
    assert Formatter("web.1", "d-1").sample_lines(sample) == [
        f"{HEAD} sample#dynostat.tasks=31 sample#dynostat.tasks_limit=256"
    ]
    (line,) = Formatter("web.1", "d-1", output_format="json").sample_lines(sample)
    assert json.loads(line)["sample"] == {"dynostat.tasks": 31, "dynostat.tasks_limit": 256}


def test_a_sample_with_nothing_readable_prints_nothing_but_the_agents_own_cost():
    formatter = Formatter("web.1", "d-1")
    assert formatter.sample_lines(Sample(wall_time=0.0)) == []
    alone = Sample(wall_time=0.0, agent_rss=mb(7.5), agent_cpu_ms=0.0)
    assert formatter.sample_lines(alone) == [
        f"{HEAD} sample#dynostat.agent_rss=7.50MB sample#dynostat.agent_cpu=0.00ms"
    ]


def test_trivial_culprits_are_left_out():
    sample = Sample(
        wall_time=0.0,
        zombie_parents=[],
        top_threads=[Culprit(1, "sh", 1)],
        top_rss=[Culprit(2, "kworker", 0)],
    )
    assert Formatter("web.1", "d-1").sample_lines(sample) == []


@pytest.mark.parametrize(
    ("comm", "written"),
    [
        ("ruby", "ruby"),
        ("a b", "a b"),
        ("((a b ) ( c d) )", "((a b ) ( c d) )"),
        ("x=y", "x=y"),
        ("usr/bin/x", "usr/bin/x"),
        ('say "hi"', 'say \\"hi\\"'),
        ("a,b", "a\\u002cb"),
        ("a:b", "a\\u003ab"),
        ("back\\slash", "back\\\\slash"),
        ("tab\there", "tab\\there"),
        ("nl\nforged=1", "nl\\nforged=1"),
        ("bell\x07", "bell\\u0007"),
        ("del\x7f", "del\\u007f"),
        ("nel\x85", "nel\\u0085"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("tag\U000e0041", "tag\\udb40\\udc41"),
        ("smile😀", "smile😀"),
        ("bad\udcffbyte", "bad\ufffdbyte"),
        ("lone\ud800", "lone\ufffd"),
        ("kéké", "kéké"),
    ],
)
def test_a_culprit_comm_is_a_json_string_body_and_reads_back_as_itself(comm, written):
    assert culprit_comm(comm) == written
    assert json.loads(f'"{written}"') == plain_text(comm)
    sample = Sample(wall_time=0.0, top_rss=[Culprit(42, comm, mb(2)), Culprit(7, "sh", mb(1))])
    (line,) = Formatter("web.1", "d-1").sample_lines(sample)
    assert "\n" not in line and "\r" not in line
    line.encode("utf-8")  # strict: no lone surrogate reaches the line
    fields = parse_logfmt(line)
    assert list(fields) == ["source", "dyno", "top#rss"]
    assert parse_culprits(fields["top#rss"]) == [
        (42, plain_text(comm), "2.00MB"),
        (7, "sh", "1.00MB"),
    ]
    assert logfmtkv.parse(line, strict=True) == fields


def test_a_weird_comm_quotes_the_whole_value_and_escapes_quote_and_backslash_twice():
    # Once inside the entry (the comm is a JSON string body), once more for the quoted value.
    sample = Sample(wall_time=0.0, top_threads=[Culprit(9, 'a "b"=\\', 3)])
    (line,) = Formatter("web.1", "d-1").sample_lines(sample)
    assert line == HEAD + r' top#threads="9/a \\\"b\\\"=\\\\:3"'
    assert parse_culprits(parse_logfmt(line)["top#threads"]) == [(9, 'a "b"=\\', "3")]


def test_the_culprits_line_stays_under_logplex_s_limit_by_dropping_the_smallest_entries():
    ugly = "\x01" * 15  # each is written \u0001, and its backslash doubled when quoted
    many = [Culprit(100000 + i, ugly, 1000 - i) for i in range(400)]
    sample = Sample(wall_time=0.0, zombie_parents=many, top_threads=many, top_rss=many)
    (line,) = Formatter("web-12a34b56d-e78f9", "d-1").sample_lines(sample)
    assert len(line.encode("utf-8")) + 1 <= logfmt.MAX_LINE_BYTES
    fields = parse_logfmt(line)
    kept = parse_culprits(fields["top#zombie_parents"])
    assert 10 < len(kept) < 400
    assert [pid for pid, _, _ in kept] == [100000 + i for i in range(len(kept))]
    assert all(comm == ugly for _, comm, _ in kept)


def test_source_and_dyno_are_quoted_when_they_need_it():
    line = Formatter("web 1", "").sample_lines(Sample(wall_time=0.0, agent_cpu_ms=1.0))[0]
    assert line == 'source="web 1" dyno="" sample#dynostat.agent_cpu=1.00ms'


# -- events -----------------------------------------------------------------------------------


def test_a_warning_line_carries_source_dyno_numbers_and_the_culprit():
    fields = {
        "at": "warn",
        "event": "memory_near_quota",
        "memory_total": megabytes(mb(470)),
        "memory_quota": megabytes(512 * MB),
        "pct": 91,
        "pid": 1234,
        "comm": "my app",
    }
    assert Formatter("web.1", "d-1").event_line(fields) == (
        f"{HEAD} at=warn event=memory_near_quota memory_total=470.00MB memory_quota=512.00MB"
        ' pct=91 pid=1234 comm="my app"'
    )


def test_an_error_reason_is_quoted_and_cut_to_a_readable_length():
    reason = "ValueError: " + "x" * 500
    line = Formatter("web.1", "d-1").event_line({"at": "error", "event": "e", "reason": reason})
    value = parse_logfmt(line)["reason"]
    assert value.startswith("ValueError: xxx") and value.endswith("...")
    assert len(value) == logfmt.MAX_TEXT_CHARS


# -- JSON -------------------------------------------------------------------------------------


def test_json_prints_one_object_per_interval_with_the_same_numbers():
    sample = full_sample()
    sample.push_dropped = 2
    formatter = Formatter("web.1", "d-1", output_format="json")
    (line,) = formatter.sample_lines(sample)
    document = json.loads(line)
    assert document["source"] == "web.1" and document["dyno"] == "d-1"
    assert document["time"] == 1764219600.25
    logfmt_numbers = {}
    for text in Formatter("web.1", "d-1").sample_lines(sample)[:3]:
        for key, value in parse_logfmt(text).items():
            if key.startswith("sample#"):
                logfmt_numbers[key[len("sample#") :]] = value
    assert set(document["sample"]) == set(logfmt_numbers)
    for name, value in document["sample"].items():
        unit = document["units"].get(name, "")
        assert (
            logfmt_numbers[name]
            == (f"{value:.2f}" if isinstance(value, float) else str(value)) + unit
        )
    assert document["units"]["dynostat.memory_pgpgin"] == "pages"
    assert document["units"]["dynostat.agent_cpu"] == "ms"
    assert document["top"] == {
        "zombie_parents": [
            {"pid": 1234, "comm": "ruby", "zombies": 57},
            {"pid": 99, "comm": "sh", "zombies": 2},
        ],
        "threads": [{"pid": 1234, "comm": "ruby", "threads": 40}],
        "rss": [
            {"pid": 1234, "comm": "ruby", "rss": 201.23},
            {"pid": 99, "comm": "sh", "rss": 1.5},
        ],
        "pss": [{"pid": 1234, "comm": "ruby", "pss": 150.5}],
    }
    # The worker group with every interval, as its workers line prints it when it is due.
    assert document["workers"] == {
        "pid": 1234,
        "comm": "ruby",
        "workers": 4,
        "worker_pss": 47.4,
        "worker_uss": 30.2,
        "parent_pss": 52.1,
        "fits": 9,
    }
    assert document["sample"]["dynostat.memory_oom_kills"] == 2


def test_json_warnings_are_objects_too_and_weird_comms_survive():
    formatter = Formatter("web.1", "d-1", output_format="json")
    line = formatter.event_line(
        {"at": "warn", "event": "threads_rising", "threads": 9, "pid": 3, "comm": 'a"\\\n\udcff'}
    )
    assert "\n" not in line
    assert json.loads(line) == {
        "source": "web.1",
        "dyno": "d-1",
        "at": "warn",
        "event": "threads_rising",
        "threads": 9,
        "pid": 3,
        "comm": 'a"\\\n\ufffd',
    }
    assert json.loads(formatter.event_line({"at": "warn", "rss": megabytes(mb(1.5))}))["rss"] == 1.5


def test_a_json_line_also_stays_under_logplex_s_limit():
    many = [Culprit(100000 + i, "\x01" * 15, 1000 - i) for i in range(400)]
    sample = Sample(wall_time=0.0, zombie_parents=many, top_threads=many, top_rss=many)
    (line,) = Formatter("web.1", "d-1", output_format="json").sample_lines(sample)
    assert len(line.encode("utf-8")) + 1 <= logfmt.MAX_LINE_BYTES
    assert 10 < len(json.loads(line)["top"]["rss"]) < 400


def test_quantity_prints_two_decimals_in_logfmt_and_the_same_digits_in_json():
    assert Quantity(0.125, "MB").logfmt() == "0.12MB"
    assert Quantity(0.125, "MB").number() == 0.12
    assert Quantity(3, "pages").logfmt() == "3pages"
    assert megabytes(MB * 2).logfmt() == "2.00MB"


# -- writing ----------------------------------------------------------------------------------


# -- properties -------------------------------------------------------------------------------

# Every character there is, lone surrogates included (text from environment variables and
# paths carries undecodable bytes as lone surrogates).
ANY_TEXT = st.text(st.characters(exclude_categories=()))


def has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def without_surrogates(text: str) -> str:
    """What logfmt promises to give back: the text, with each lone surrogate as U+FFFD."""
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


def escapes_in(body: str) -> set[str]:
    """The letters after each escaping backslash of a JSON string's inside."""
    found, i = set(), 0
    while i < len(body):
        if body[i] == "\\":
            found.add(body[i + 1])
            i += 2
        else:
            i += 1
    return found


@given(ANY_TEXT)
def test_a_quoted_value_is_exactly_a_json_string_of_the_value(value):
    quoted = logfmt.quote(value)
    quoted.encode("utf-8")  # strict: raises on a lone surrogate
    if quoted == value:
        assert value.isprintable() and not any(char in ' ="\\' for char in value)
        return
    assert json.loads(quoted) == without_surrogates(value)
    # Only the JSON escapes \" \\ \n \r \t and \uXXXX; never Go's \xNN or \UNNNNNNNN.
    assert escapes_in(quoted[1:-1]) <= set('"\\nrtu')


@given(ANY_TEXT, ANY_TEXT)
def test_any_value_reads_back_with_the_readme_decoder_and_a_go_logfmt_parser(value, other):
    line = logfmt.line({"a": "1", "v": value, "w": other, "z": "2"})
    assert "\n" not in line and "\r" not in line
    expected = {"a": "1", "v": without_surrogates(value), "w": without_surrogates(other), "z": "2"}
    assert readme_decoder.fields(line) == expected
    assert logfmtkv.parse(line, strict=True) == expected


@given(st.binary())
def test_undecodable_bytes_read_the_same_from_a_comm_and_from_an_environment_variable(raw):
    # A comm is decoded from bytes; a dyno name from the environment arrives with its bad
    # bytes as lone surrogates. Both show as the bytes decoded with U+FFFD for bad ones.
    comm = raw[: procfs.MAX_COMM_BYTES]
    assert procfs.decode_comm(comm) == comm.decode("utf-8", "replace")
    assert plain_text(raw.decode("utf-8", "surrogateescape")) == raw.decode("utf-8", "replace")


@given(
    st.lists(
        st.tuples(st.integers(1, 4194304), st.binary(min_size=1, max_size=80)),
        min_size=1,
        max_size=5,
    )
)
def test_any_comm_bytes_read_back_from_a_culprits_line_and_from_json(entries):
    # Each comm comes from a stat line, parsed as the scan parses it.
    culprits = []
    for count, (pid, comm) in enumerate(entries, start=1):
        row = procfs.parse_stat_row(b"%d (%s) Z 1 " % (pid, comm) + b"0 " * 30)
        culprits.append(
            Culprit(row[procfs.ROW_PID], procfs.decode_comm(row[procfs.ROW_COMM]), count)
        )
    expected = [
        (pid, comm[: procfs.MAX_COMM_BYTES].decode("utf-8", "replace")) for pid, comm in entries
    ]
    sample = Sample(wall_time=0.0, zombie_parents=culprits)
    (line,) = Formatter("web.1", "d-1").sample_lines(sample)
    line.encode("utf-8")
    assert "\n" not in line
    value = parse_logfmt(line)["top#zombie_parents"]
    assert [(pid, comm) for pid, comm, _ in parse_culprits(value)] == expected
    assert logfmtkv.parse(line, strict=True)["top#zombie_parents"] == value
    (document,) = Formatter("web.1", "d-1", output_format="json").sample_lines(sample)
    assert document.isascii()
    top = json.loads(document)["top"]["zombie_parents"]
    assert [(entry["pid"], entry["comm"]) for entry in top] == expected


@given(ANY_TEXT, ANY_TEXT, ANY_TEXT)
def test_any_text_gives_valid_utf8_lines_and_strict_json(source, comm, reason):
    event = {"at": "warn", "event": "e", "pid": 1, "comm": comm, "reason": reason}
    sample = Sample(wall_time=0.0, top_threads=[Culprit(5, comm, 2)])
    for fmt in ("logfmt", "json"):
        formatter = Formatter(source, "d-1", output_format=fmt)
        for line in [*formatter.sample_lines(sample), formatter.event_line(event)]:
            line.encode("utf-8")  # strict: raises on a lone surrogate
            assert "\n" not in line and "\r" not in line
            if fmt == "json":
                document = json.loads(line)
                # Strict JSON (RFC 7493): not even an escaped lone surrogate.
                assert not any(has_surrogate(text) for text in _strings(document))
            else:
                document = parse_logfmt(line)
                assert logfmtkv.parse(line, strict=True) == document
            # The dyno's name is cut to 64 characters, so it leaves room on every line.
            assert document["source"] == logfmt.clip(plain_text(source), 64)
            if "comm" in document:
                assert document["comm"] == logfmt.clip(plain_text(comm))


def _strings(document: object) -> list[str]:
    if isinstance(document, str):
        return [document]
    if isinstance(document, dict):
        return [text for key, value in document.items() for text in (key, *_strings(value))]
    if isinstance(document, list):
        return [text for item in document for text in _strings(item)]
    return []


def test_the_readme_decoder_is_four_lines():
    assert len(readme_decoder.decoder_source().splitlines()) == 4


HOSTILE_NAMES = st.text(st.characters(), min_size=0, max_size=20_000) | st.sampled_from(
    ["\U0001f600" * 5000, "\x01" * 5000, '"\\' * 5000]
)


@given(
    names=st.tuples(HOSTILE_NAMES, HOSTILE_NAMES),
    comm=st.text(max_size=64),
    texts=st.tuples(HOSTILE_NAMES, HOSTILE_NAMES),
    fmt=st.sampled_from(["logfmt", "json"]),
)
def test_no_line_is_ever_longer_than_one_atomic_pipe_write(names, comm, texts, fmt):
    """Whatever the dyno's names, comms and error texts, every line (newline included) fits in
    PIPE_BUF, so the log writer never has to drop it for its size or tear it."""
    many = [Culprit(4194304 - i, comm, 10**12 - i) for i in range(20)]
    sample = Sample(
        wall_time=1e9,
        load=LoadAvg(1.0, 2.0, 3.0),
        memory=Memory(
            rss=2**60,
            cache=2**60,
            swap=2**60,
            pgpgin=2**63,
            pgpgout=2**63,
            quota=2**62,
            oom_kills=2**63,
        ),
        tasks=Tasks(tasks=2**22, processes=2**22, threads=2**22, zombies=2**22, limit=2**22),
        zombie_parents=many,
        top_threads=many,
        top_rss=many,
        top_pss=many,
        workers=Workers(4194304, comm, 2**22, 2**60, 2**60, 2**60, 2**40),
        agent_rss=2**40,
        agent_cpu_ms=1e6,
        push_dropped=2**40,
    )
    (source, dyno), (reason, path) = names, texts
    formatter = Formatter(source, dyno, fmt, prefix="p" * 64)
    lines = formatter.sample_lines(sample)
    lines.append(
        formatter.event_line(
            {"at": "error", "event": "source_malformed", "path": path, "error": reason,
             "comm": comm, "reason": reason, "extra": path, "more": reason}
        )
    )  # fmt: skip
    lines.extend(formatter.event_line(fields) for fields in Alerts().check(sample))
    for line in lines:
        assert len((line + "\n").encode("utf-8")) <= logfmt.MAX_LINE_BYTES
        if fmt == "json":
            json.loads(line)
