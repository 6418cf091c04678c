"""The page's figures follow Plotly's schema, the page holds everything it needs, hostile log
text cannot escape into it, and thinning for display keeps every spike."""

from __future__ import annotations

import re

import plotly.graph_objects as go
import pytest
from report_logs import Record, heroku_logs, incident

from dynostat_report import page, thin
from dynostat_report.reader import Reader
from dynostat_report.summary import summarize

HOSTILE = '</script><script>alert("x")</script><img src=x onerror=alert(1)> &amp; <!--'


def build(lines) -> tuple[Reader, dict]:
    reader = Reader()
    reader.read_lines(lines)
    reader.finish()
    return reader, summarize(reader)


@pytest.fixture(scope="module")
def incident_page() -> tuple[Reader, dict, str]:
    reader, summary = build(heroku_logs(incident().records))
    return reader, summary, page.render(reader, summary, ["incident.log"])


def test_every_figure_is_valid_for_plotly(incident_page):
    reader, summary, _ = incident_page
    data = page.page_data(reader, summary)
    # Plotly's own figure classes check every attribute name and value against its schema.
    go.Figure(data["overview"])
    for entry in data["dynos"]:
        figure = go.Figure(entry["figure"])
        assert figure.layout.xaxis.type == "date"
    assert [entry["name"] for entry in data["dynos"]] == ["web.2", "web.1", "worker.1"]


def test_a_dyno_figure_has_its_rows_limits_markers_and_crash(incident_page):
    reader, summary, _ = incident_page
    web1 = next(e for e in page.page_data(reader, summary)["dynos"] if e["name"] == "web.1")
    figure = web1["figure"]
    names = {trace.get("name") for trace in figure["data"]}
    assert {
        "tasks",
        "zombies",
        "threads",
        "tasks limit",
        "total",
        "quota",
        "1m",
        "service p50",
        "service p95",
        "H12 per minute",
        "crash",
        "dynostat warning",
        "fork/thread failed (EAGAIN)",
    } <= names
    limit = next(t for t in figure["data"] if t["name"] == "tasks limit")
    assert set(limit["y"]) == {256}
    assert len(limit["y"]) == 2  # a limit that never changed: where it started, and ended
    crash_lines = [s for s in figure["layout"]["shapes"] if s["line"]["color"] == page.RED]
    assert len(crash_lines) == 1
    flags = [a["text"] for a in figure["layout"]["annotations"]]
    assert "<b>first failure: EAGAIN</b>" in flags
    assert "<b>first warning: zombies_rising, 20 min 6 s ahead</b>" in flags


def test_the_page_loads_nothing_from_anywhere(incident_page):
    _, _, text = incident_page
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)\s*=", text, re.I)
    assert "plotly.js v" in text  # the library itself is inline
    # The overview's data, each dyno's figure, plotly.js and the page's own script.
    assert text.count("<script") == 2 + 3 + 1


def test_hostile_log_text_cannot_leave_its_place(tmp_path):
    lines = [
        "2026-11-27T05:27:22Z app[web.1]: source=web.1 dyno=x sample#dynostat.tasks=250 "
        "sample#dynostat.tasks_limit=256",
        "2026-11-27T05:27:23Z app[web.1]: source=web.1 dyno=x at=warn event=tasks_near_limit "
        f"pid=8 comm={page.json.dumps(HOSTILE)}",
        f'2026-11-27T05:27:24Z heroku[router]: at=error code=H12 path="{HOSTILE}" '
        "dyno=web.1 service=30000ms status=503",
        f"2026-11-27T05:27:25Z app[api]: Release v9 created by {HOSTILE}",
    ]
    reader, summary = build(lines)
    text = page.render(reader, summary, [HOSTILE])
    for data in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', text, re.S):
        assert "<" not in data
        assert ">" not in data
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    assert "&lt;/script&gt;&lt;script&gt;alert" in text  # shown, escaped, in the table


def test_min_max_thinning_keeps_every_spike():
    times = [float(i) for i in range(4320)]
    values = [10.0] * 4320
    values[1234] = 256.0  # one sample at the limit
    values[3000] = 0.0
    kept_times, kept_values = thin.min_max(times, values, 1200)
    assert len(kept_values) <= 1200
    assert max(kept_values) == 256.0
    assert kept_times[kept_values.index(256.0)] == 1234.0
    assert min(kept_values) == 0.0
    assert kept_times == sorted(kept_times)


def test_a_silence_breaks_the_line_instead_of_bridging_it():
    times = [float(t) for t in range(0, 600, 20)] + [float(t) for t in range(1200, 1800, 20)]
    values = [1.0] * len(times)
    shown_times, shown_values = thin.for_display(times, values, 1200)
    assert shown_values.count(None) == 1
    gap = shown_values.index(None)
    assert shown_times[gap - 1] == 580.0
    assert shown_times[gap + 1] == 1200.0


def test_a_limit_is_drawn_from_where_it_changed():
    assert thin.steps([0.0, 1.0, 2.0, 3.0], [256.0, 256.0, 512.0, 512.0]) == (
        [0.0, 2.0, 3.0],
        [256.0, 512.0, 512.0],
    )


def test_markers_beyond_the_budget_are_thinned_and_said(monkeypatch):
    monkeypatch.setattr(page, "MAX_MARKERS", 100)
    records = [
        Record(
            1795755600.0 + n,
            "heroku",
            "router",
            f"at=error code=H12 dyno=web.1 service=30000ms status=503 n={n}",
        )
        for n in range(1000)
    ]
    reader, summary = build(heroku_logs(records))
    assert summary["dynos"]["web.1"]["errors"] == {"H12": 1000}
    figure = page.dyno_figure(
        reader.dynos["web.1"], summary["dynos"]["web.1"], page.Timeline(reader.first), []
    )
    markers = next(t for t in figure["data"] if t.get("mode") == "markers")
    assert len(markers["x"]) == 100
    assert figure["omitted_markers"] == 900


def test_the_overview_puts_each_dyno_at_its_nearest_limit(incident_page):
    reader, summary, _ = incident_page
    overview = page.page_data(reader, summary)["overview"]["data"][0]
    rows = dict(zip(overview["y"], overview["z"]))
    assert max(v for v in rows["web.1"] if v is not None) == 100.0
    assert max(v for v in rows["web.2"] if v is not None) == 100.0  # over the quota, capped
    assert max(v for v in rows["worker.1"] if v is not None) < 30
    assert None in rows["web.1"]  # the minutes it was down


def test_router_minutes_without_requests_break_the_line_and_lone_minutes_show():
    base = 1795755600.0
    minutes = [0, 1, 2, 10, 20, 21]  # 3 busy minutes, a lone one, then 2 more
    records = [
        Record(
            base + 60 * m + 5,
            "heroku",
            "router",
            f"at=info method=GET dyno=web.1 connect=0ms service={100 + m}ms status=200",
        )
        for m in minutes
    ]
    reader, summary = build(heroku_logs(records))
    figure = page.dyno_figure(
        reader.dynos["web.1"], summary["dynos"]["web.1"], page.Timeline(reader.first), []
    )
    p50 = next(t for t in figure["data"] if t["name"] == "service p50")
    assert p50["y"] == [100, 101, 102, None, 110, None, 120, 121]
    assert p50["mode"] == "lines+markers"
