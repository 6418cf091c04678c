"""The summary's numbers equal the input's, in every format the report reads, through junk,
cut and binary lines, several files, overlaps, any metric prefix and metrics it never heard
of. The logs are written by ``report_logs`` with their answers tallied as they were made."""

from __future__ import annotations

import gzip
import json
import math
import random
from datetime import datetime

import pytest
from report_logs import (
    Incident,
    Record,
    drain_body,
    heroku_logs,
    incident,
    iso,
    json_lines,
    logplex_frame,
    papertrail_archive,
    syslog_lines,
)

from dynostat.output import Formatter
from dynostat.sample import Culprit, LoadAvg, Memory, Sample, Tasks
from dynostat_report import inputs
from dynostat_report.reader import Reader
from dynostat_report.summary import summarize

MB = 1024 * 1024


def read(lines) -> dict:
    reader = Reader()
    reader.read_lines(lines)
    reader.finish()
    return summarize(reader)


def read_files(*paths) -> dict:
    reader = Reader()
    for path in paths:
        source = inputs.open_source(str(path))
        try:
            reader.read_source(source)
        finally:
            source.close()
    reader.finish()
    return summarize(reader)


def moment(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def assert_summary_matches(summary: dict, found: Incident, time_tolerance: float = 0.002):
    assert set(summary["dynos"]) == set(found.expected)
    for name, expected in found.expected.items():
        dyno = summary["dynos"][name]
        assert dyno["peak_tasks"] == expected.peak_tasks, name
        assert dyno["tasks_limit"] == expected.tasks_limit, name
        assert dyno["peak_zombies"] == expected.peak_zombies, name
        assert dyno["peak_memory_mb"] == expected.peak_memory_mb, name
        assert dyno["memory_quota_mb"] == expected.memory_quota_mb, name
        assert dyno["peak_tasks_pct"] == round(expected.peak_tasks * 100 / 256, 1)
        assert dyno["errors"] == dict(expected.errors), name
        assert dyno["warnings"] == dict(expected.warnings), name
        assert dyno["crashes"] == expected.crashes, name
        assert dyno["restarts"] == expected.restarts, name
        assert dyno["fork_failures"] == expected.fork_failures, name
        culprits = {(c["pid"], c["comm"], c["event"]) for c in dyno["culprits"]}
        assert culprits == expected.culprits, name
        counted = {c["event"]: 0 for c in dyno["culprits"]}
        for culprit in dyno["culprits"]:
            counted[culprit["event"]] += culprit["count"]
        assert counted == dict(expected.warnings), name
        for key, want in (
            ("first_warning", expected.first_warning),
            ("first_failure", expected.first_failure),
        ):
            got = dyno[key]["at"] if dyno[key] else None
            if want is None:
                assert got is None, (name, key)
            else:
                assert moment(got) == pytest.approx(want, abs=time_tolerance), (name, key)
        if expected.first_warning is not None and expected.first_failure is not None:
            lead = expected.first_failure - expected.first_warning
            assert dyno["warning_lead_s"] == pytest.approx(lead, abs=0.1 + time_tolerance)
        if expected.requests:
            router = dyno["router"]
            assert router["requests"] == expected.requests
            assert router["service_p50_ms"] == nearest_rank(expected.service_ms, 0.5)
            assert router["service_p95_ms"] == nearest_rank(expected.service_ms, 0.95)
            assert router["service_max_ms"] == max(expected.service_ms)
        else:
            assert dyno["router"] is None
        assert dyno["metrics"]["tasks"]["samples"] == expected.samples
    assert summary["unattributed_errors"] == dict(found.unattributed)


@pytest.fixture(scope="module")
def the_incident() -> Incident:
    return incident()


# -- every format ---------------------------------------------------------------------------


def test_heroku_logs_text(the_incident):
    summary = read(heroku_logs(the_incident.records))
    assert_summary_matches(summary, the_incident)
    assert summary["skipped_lines"] == 0
    assert summary["lines"] == len(the_incident.records)
    assert summary["first"] == iso(the_incident.first, 3).replace("+00:00", "Z")
    assert summary["last"] == iso(the_incident.last, 3).replace("+00:00", "Z")


def test_heroku_logs_in_colour_as_the_cli_prints_to_a_terminal(the_incident):
    summary = read(heroku_logs(the_incident.records, colour=True))
    assert_summary_matches(summary, the_incident)
    assert summary["skipped_lines"] == 0


def test_an_https_drain_body_of_octet_counted_frames(tmp_path, the_incident):
    path = tmp_path / "drain.log"
    path.write_bytes(drain_body(the_incident.records))
    assert_summary_matches(read_files(path), the_incident)


def test_frames_written_back_to_back_without_newlines_are_split_by_their_counts(the_incident):
    records = the_incident.records[:300]
    body = b"".join(logplex_frame(record).rstrip(b"\n") for record in records)
    # Each frame's count still includes its newline: drop it from the count as well.
    frames = []
    for record in records:
        frame = logplex_frame(record)
        count, _, rest = frame.partition(b" ")
        frames.append(str(int(count) - 1).encode() + b" " + rest.rstrip(b"\n"))
    body = b"".join(frames)
    assert inputs.frames(body)[:2] == [frame.partition(b" ")[2] for frame in frames[:2]]
    reader = Reader()
    for frame in inputs.frames(body):
        reader.feed_bytes(frame)
    reader.finish()
    assert reader.lines == len(records)
    assert not reader.skipped


def test_syslog_drain_lines(the_incident):
    assert_summary_matches(read(syslog_lines(the_incident.records)), the_incident)


def test_a_papertrail_style_tab_separated_archive(the_incident):
    assert_summary_matches(read(papertrail_archive(the_incident.records)), the_incident)


def test_dynostat_json_lines_as_the_agent_printed_them(the_incident):
    summary = read(json_lines(the_incident.records, bare=True))
    assert_summary_matches(summary, the_incident, time_tolerance=0.1)
    assert summary["skipped_lines"] == 0


def test_dynostat_json_lines_inside_heroku_envelopes(the_incident):
    summary = read(json_lines(the_incident.records, bare=False))
    assert_summary_matches(summary, the_incident, time_tolerance=0.1)


@pytest.mark.parametrize("prefix", ["", "myapp_", "acme.metrics."])
def test_any_metric_prefix(prefix):
    found = incident(prefix=prefix)
    assert_summary_matches(read(heroku_logs(found.records)), found)


def test_gzip_files_are_read_as_they_are(tmp_path, the_incident):
    path = tmp_path / "drain-1.log.gz"
    path.write_bytes(gzip.compress("\n".join(heroku_logs(the_incident.records)).encode()))
    assert_summary_matches(read_files(path), the_incident)


def test_a_cut_gzip_keeps_what_came_before_the_cut_and_says_so(tmp_path, the_incident):
    data = gzip.compress("\n".join(heroku_logs(the_incident.records)).encode())
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[: len(data) // 2])
    summary = read_files(path)
    assert 0 < summary["lines"] < len(the_incident.records)
    assert summary["notes"] and "ended early" in summary["notes"][0]


# -- several inputs -------------------------------------------------------------------------


def test_several_files_merge_by_time_whatever_their_order(tmp_path, the_incident):
    lines = heroku_logs(the_incident.records)
    first = tmp_path / "a.log"
    second = tmp_path / "b.log"
    # The later half first, and each file in reverse order: nothing depends on order.
    first.write_text("\n".join(reversed(lines[len(lines) // 2 :])) + "\n")
    second.write_text("\n".join(reversed(lines[: len(lines) // 2])) + "\n")
    assert_summary_matches(read_files(first, second), the_incident)


def test_overlapping_exports_count_each_line_once_across_formats(tmp_path, the_incident):
    records = the_incident.records
    third = len(records) // 3
    text = tmp_path / "heroku-logs.txt"
    drain = tmp_path / "drain.log"
    text.write_text("\n".join(heroku_logs(records[: 2 * third])) + "\n")
    drain.write_bytes(drain_body(records[third:]))
    summary = read_files(text, drain)
    assert_summary_matches(summary, the_incident)
    assert summary["duplicate_lines"] == third


# -- bad lines ------------------------------------------------------------------------------


def test_junk_cut_binary_and_colour_lines_are_counted_and_change_nothing(the_incident):
    rng = random.Random(3)
    good = heroku_logs(the_incident.records)
    junk: list[bytes] = [
        b"hello world",
        b"\x00\x01\x02\xff\xfe binary \x00",
        bytes(rng.getrandbits(8) for _ in range(300)).replace(b"\n", b""),
        b"\xff\xfe\xfd not utf-8 at all",
        b"2026-11-27T05:2",
        b"2026-11-27T05:27:22.035388+00:00 app[web.1",
        b"<190>1 2026-11-27T05:27:22Z host",
        b"{not json",
        b'{"no": "source"}',
        b"[" * 100_000,
        b"source=web.1 dyno=x sample#dynostat.tasks=999",  # no time: cannot be placed
        b"\x1b[31m\x1b[0m",
        b"2026-02-30T05:27:22Z app[web.1]: source=web.1 sample#dynostat.tasks=999",
    ]
    lines: list[bytes] = []
    for number, line in enumerate(good):
        lines.append(line.encode())
        if number % 200 == 0:
            lines.append(junk[(number // 200) % len(junk)])
    inserted = sum(1 for number in range(len(good)) if number % 200 == 0)
    summary = read(lines)
    assert_summary_matches(summary, the_incident)
    assert summary["skipped_lines"] == inserted
    assert summary["lines"] == len(good) + inserted


def test_each_kind_of_bad_line_is_counted_with_its_reason():
    summary = read(
        [
            b"\x00\x00binary",
            b"just words",
            b"source=web.1 dyno=x sample#dynostat.tasks=3",
            b'{"source": "web.1", "sample": {"dynostat.tasks": 3}}',  # JSON without time
            b"",
            b"   ",
            # A syslog server's default file format: no year, no zone.
            b"Nov 27 05:27:22 logs app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=3",
            b"<190>Dec  1 00:00:01 logs app[web.1]: hello",
        ]
    )
    assert summary["skipped"] == {
        "dynostat line without a time": 2,
        "binary": 1,
        "not a log line": 1,
        "classic syslog time (no year)": 2,
    }
    assert summary["skipped_lines"] == 6
    assert summary["lines"] == 6 + 0  # blank lines are not lines
    assert summary["dynos"] == {}


def test_an_overlong_line_is_skipped_without_being_held_whole(tmp_path):
    good = "2026-11-27T05:27:22Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=7"
    path = tmp_path / "long.log"
    path.write_bytes(b"x" * (3 * inputs.MAX_LINE_BYTES) + b"\n" + good.encode() + b"\n")
    summary = read_files(path)
    assert summary["skipped"] == {"longer than 64 KiB": 1}
    assert summary["dynos"]["web.1"]["peak_tasks"] == 7


def test_a_cut_error_code_is_not_counted_as_another_code():
    summary = read(
        [
            "2026-11-27T05:27:22Z heroku[web.1]: Error R1",
            "2026-11-27T05:27:23Z heroku[web.1]: Error R14 (Memory quota exceeded)",
            "2026-11-27T05:27:24Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=2",
        ]
    )
    assert summary["dynos"]["web.1"]["errors"] == {"R14": 1}


def test_a_metric_value_that_is_not_a_number_is_left_out_not_zeroed():
    summary = read(
        [
            "2026-11-27T05:27:22Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=5",
            "2026-11-27T05:27:42Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=abc",
            "2026-11-27T05:28:02Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=nan",
            "2026-11-27T05:28:22Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=",
        ]
    )
    assert summary["dynos"]["web.1"]["metrics"]["tasks"] == {"peak": 5, "last": 5, "samples": 1}
    assert summary["dynos"]["web.1"]["peak_memory_mb"] is None


# -- what the agent prints ------------------------------------------------------------------


def agent_lines(fmt: str, comm: str, start: float) -> list[tuple[float, str]]:
    """Two ticks and a warning, formatted by the agent's own Formatter, with their times."""
    formatter = Formatter("web.1", "d1-abc", output_format=fmt)
    lines = []
    for tick, zombies in enumerate((3, 250)):
        sample = Sample(
            wall_time=start + 20 * tick,
            load=LoadAvg(0.5, 0.4, 0.3),
            memory=Memory(rss=200 * MB, cache=10 * MB, swap=0, quota=512 * MB),
            tasks=Tasks(
                tasks=6 + zombies,
                processes=5 + zombies,
                threads=6 + zombies,
                zombies=zombies,
                limit=256,
            ),
            zombie_parents=[Culprit(8, comm, zombies)],
            top_threads=[Culprit(9, "puma", 5)],
            top_rss=[Culprit(9, "puma", 150 * MB)],
            agent_rss=9 * MB,
            agent_cpu_ms=1.2,
        )
        lines.extend((start + 20 * tick, line) for line in formatter.sample_lines(sample))
    lines.append(
        (
            start + 20,
            formatter.event_line(
                {
                    "at": "warn",
                    "event": "tasks_near_limit",
                    "tasks": 256,
                    "tasks_limit": 256,
                    "pct": 100,
                    "pid": 8,
                    "comm": comm,
                    "zombies": 250,
                }
            ),
        )
    )
    return lines


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
@pytest.mark.parametrize("comm", ["leaky_worker", "a,b:c/d", 'x "y" \\ z', "émoji 🧟", "tab\t"])
def test_the_agents_own_lines_with_any_process_name(fmt, comm):
    start = 1795755600.0
    lines = agent_lines(fmt, comm, start)
    wrapped = [f"{iso(time)} app[web.1]: {line}" for time, line in lines]
    dyno = read(wrapped)["dynos"]["web.1"]
    assert dyno["peak_tasks"] == 256
    assert dyno["tasks_limit"] == 256
    assert dyno["peak_zombies"] == 250
    assert dyno["peak_memory_mb"] == 210.0
    assert dyno["memory_quota_mb"] == 512.0
    assert dyno["peak_load_1m"] == 0.5
    assert dyno["dyno_ids"] == ["d1-abc"]
    assert dyno["culprits"] == [
        {"pid": 8, "comm": comm, "event": "tasks_near_limit", "count": 1, "first": dyno["last"]}
    ]
    assert dyno["top_at_peak_tasks"]["zombie_parents"] == [{"pid": 8, "comm": comm, "value": 250}]
    assert dyno["metrics"]["agent_cpu"] == {"peak": 1.2, "last": 1.2, "samples": 2, "unit": "ms"}


def test_bare_json_events_take_the_time_of_the_sample_before_them():
    lines = agent_lines("json", "leaky_worker", 1795755600.0)
    dyno = read(line for _, line in lines)["dynos"]["web.1"]
    assert dyno["first_warning"]["at"] == iso(1795755620.0, 3).replace("+00:00", "Z")


def test_new_metrics_and_events_flow_through_without_being_known():
    head = "source=web.1 dyno=d1"
    lines = [
        f"{head} sample#dynostat.memory_total=300.00MB sample#dynostat.memory_quota=512.00MB "
        "sample#dynostat.memory_oom_kills=2",
        f"{head} sample#dynostat.memory_oom_kills=3 sample#dynostat.brand_new=1.5GB",
        f"{head} top#pss=8/puma:120.50MB,9/sidekiq:80.00MB",
        f"{head} at=info event=workers pid=8 comm=puma workers=4 worker_pss=60.00MB fits=7",
        f"{head} at=warn event=memory_growing rate=36.00MB/h eta=2h10m memory_total=300.00MB "
        "memory_quota=512.00MB pid=8 comm=puma rss=200.00MB",
        f"{head} at=warn event=oom_kill oom_kills=3 pid=12 comm=ruby rss=500.00MB",
    ]
    summary = read(
        f"2026-11-27T05:00:{second:02d}Z app[web.1]: {line}" for second, line in enumerate(lines)
    )
    dyno = summary["dynos"]["web.1"]
    assert dyno["metrics"]["memory_oom_kills"] == {"peak": 3, "last": 3, "samples": 2}
    assert dyno["metrics"]["brand_new"] == {"peak": 1536, "last": 1536, "samples": 1, "unit": "MB"}
    assert dyno["warnings"] == {"memory_growing": 1, "oom_kill": 1}
    assert dyno["first_warning"]["event"] == "memory_growing"
    assert dyno["first_failure"] == {"at": "2026-11-27T05:00:05.000Z", "what": "oom_kill"}
    assert dyno["warning_lead_s"] == 1.0
    assert {(c["pid"], c["event"]) for c in dyno["culprits"]} == {
        (8, "workers"),
        (8, "memory_growing"),
        (12, "oom_kill"),
    }
    assert dyno["top_at_peak_memory"]["pss"] == [
        {"pid": 8, "comm": "puma", "value": 120.5, "unit": "MB"},
        {"pid": 9, "comm": "sidekiq", "value": 80, "unit": "MB"},
    ]


def test_heroku_runtime_metrics_alone_give_memory_and_load():
    summary = read(
        [
            "2026-11-27T05:27:22Z heroku[web.1]: source=web.1 dyno=heroku.2808254.d97d "
            "sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99",
            "2026-11-27T05:27:22Z heroku[web.1]: source=web.1 dyno=heroku.2808254.d97d "
            "sample#memory_total=521.00MB sample#memory_rss=500.22MB sample#memory_cache=0.00MB "
            "sample#memory_swap=20.78MB sample#memory_pgpgin=348836pages "
            "sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB",
        ]
    )
    dyno = summary["dynos"]["web.1"]
    assert dyno["peak_memory_mb"] == 521.0
    assert dyno["memory_quota_mb"] == 512.0
    assert dyno["peak_memory_pct"] == 101.8
    assert dyno["peak_swap_mb"] == 20.78
    assert dyno["peak_load_1m"] == 2.46
    assert dyno["peak_tasks"] is None
    assert dyno["tasks_limit"] is None


def test_heroku_dyno_lifecycle_lines():
    lines = [
        "Restarting",
        "State changed from up to starting",
        "Stopping all processes with SIGTERM",
        "Error R12 (Exit timeout) -> At least one process failed to exit within 30 seconds",
        "Stopping process with SIGKILL",
        "Process exited with status 137",
        "Starting process with command `bin/web`",
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT",
        "State changed from starting to crashed",
        "State changed from crashed to starting",
        "Cycling",
        "Idling",
    ]
    summary = read(
        f"2026-11-27T05:{n:02d}:00Z heroku[web.1]: {line}" for n, line in enumerate(lines)
    )
    dyno = summary["dynos"]["web.1"]
    assert dyno["errors"] == {"R12": 1, "R10": 1}
    assert dyno["crashes"] == 1
    assert dyno["restarts"] == 2
    assert dyno["exits"] == {"137": 1}
    assert dyno["first_failure"] == {"at": "2026-11-27T05:03:00.000Z", "what": "R12"}
    assert summary["other_lines"] == 1  # Idling


def test_a_one_off_dyno_that_only_started_and_exited_is_not_reported():
    summary = read(
        [
            "2026-11-27T05:00:00Z heroku[run.1234]: Starting process with command `bash`",
            "2026-11-27T05:01:00Z heroku[run.1234]: Process exited with status 0",
            "2026-11-27T05:01:00Z heroku[run.1234]: State changed from up to complete",
        ]
    )
    assert summary["dynos"] == {}


def test_releases_are_app_wide_moments():
    summary = read(
        [
            "2026-11-27T05:00:00Z app[api]: Release v42 created by user a@example.com",
            "2026-11-27T05:00:01Z app[api]: Deploy 4f2a9c1 by user a@example.com",
            "2026-11-27T05:10:00Z app[api]: Set FOO config vars by user a@example.com",
            "2026-11-27T05:20:00Z app[api]: Scaled to web@3:Standard-1X by user a@example.com",
            "2026-11-27T05:30:00Z app[api]: Rollback to v41 by user a@example.com",
        ]
    )
    assert [release["label"] for release in summary["releases"]] == [
        "v42",
        "deploy",
        "config",
        "scale",
        "v41",
    ]


def test_dynos_are_ordered_closest_to_a_limit_first(the_incident):
    summary = read(heroku_logs(the_incident.records))
    assert list(summary["dynos"]) == ["web.2", "web.1", "worker.1"]


def test_the_summary_is_valid_json_with_the_documented_keys(the_incident):
    summary = read(heroku_logs(the_incident.records))
    document = json.loads(json.dumps(summary, allow_nan=False))
    assert {"dynos", "skipped_lines", "first", "last"} <= set(document)
    web1 = document["dynos"]["web.1"]
    for key in (
        "peak_tasks",
        "tasks_limit",
        "peak_memory_mb",
        "memory_quota_mb",
        "errors",
        "crashes",
        "culprits",
    ):
        assert key in web1
    assert web1["culprits"][0] == {
        "pid": 8,
        "comm": "leaky_worker",
        "event": "zombies_rising",
        "count": 20,
        "first": web1["first_warning"]["at"],
    }


def test_records_of_unknown_dyno_names_keep_their_own_rows():
    records = [
        Record(
            1795755600.0 + n,
            "app",
            "web-12a34b56d-e78f9",
            f"source=web-12a34b56d-e78f9 dyno=x sample#dynostat.tasks={n}",
        )
        for n in range(5)
    ]
    summary = read(heroku_logs(records))
    assert summary["dynos"]["web-12a34b56d-e78f9"]["peak_tasks"] == 4


def test_a_client_cannot_move_its_request_to_another_dyno_through_the_path():
    spoof = " dyno=web.9 connect=0ms service=1ms status=200 "
    summary = read(
        [
            f'2026-11-27T05:27:22Z heroku[router]: at=error code=H12 desc="Request timeout" '
            f'method=GET path="/x?{spoof}" host=a.herokuapp.com fwd="{spoof}" dyno=web.1 '
            "connect=0ms service=30000ms status=503 bytes=0 protocol=https",
            f'2026-11-27T05:27:23Z heroku[router]: at=info method=GET path="/{spoof}" '
            'dyno=web.2 connect=0ms service=12ms status=200 tls="1.3 x"',
        ]
    )
    assert set(summary["dynos"]) == {"web.1", "web.2"}
    assert summary["dynos"]["web.1"]["errors"] == {"H12": 1}
    assert summary["dynos"]["web.1"]["router"]["service_max_ms"] == 30000
    assert summary["dynos"]["web.2"]["router"]["service_max_ms"] == 12


def test_the_first_failure_is_the_dynos_own_and_request_errors_only_without_one():
    head = "heroku[router]: at=error code=H13 desc=x dyno={} connect=0ms service=5ms status=503"
    summary = read(
        [
            f"2026-11-27T01:00:00Z {head.format('web.1')}",  # a blip, hours before
            "2026-11-27T05:00:00Z app[web.1]: source=web.1 dyno=a at=warn event=zombies_rising "
            "pid=8 comm=w",
            "2026-11-27T05:10:00Z heroku[web.1]: Error R14 (Memory quota exceeded)",
            f"2026-11-27T01:00:00Z {head.format('web.2')}",
            "2026-11-27T05:00:00Z app[web.2]: source=web.2 dyno=b at=warn event=zombies_rising "
            "pid=9 comm=w",
        ]
    )
    web1, web2 = summary["dynos"]["web.1"], summary["dynos"]["web.2"]
    assert web1["first_failure"] == {"at": "2026-11-27T05:10:00.000Z", "what": "R14"}
    assert web1["warning_lead_s"] == 600.0
    assert web1["errors"] == {"H13": 1, "R14": 1}
    # web.2 never failed itself: its failed request is its first failure, before the warning.
    assert web2["first_failure"] == {"at": "2026-11-27T01:00:00.000Z", "what": "H13"}
    assert web2["warning_lead_s"] == -14400.0
