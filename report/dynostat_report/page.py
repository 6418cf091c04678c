"""The report page: one self-contained HTML file, charts drawn by plotly.js inlined in it.

The figures (traces and layout) are built here as plain plotly.js figure dictionaries, so
they can be checked against Plotly's schema by the tests; the page's own script only puts
them on screen. Times travel as seconds after the report's first line (short numbers) and
the script turns them into the epoch milliseconds plotly.js reads as UTC dates.

Each dyno's chart is drawn when it scrolls near the screen, so a report of 50 dynos opens as
fast as one of three. Zooming one chart zooms them all: they share one time axis.

Everything that came from a log (dyno names, process names, log lines) reaches the page
escaped: the summary table through ``html.escape``, the data as JSON with ``<``, ``>`` and
``&`` written as ``\\u003c`` etc., and texts that plotly.js reads as its small subset of
HTML (hover texts, labels) through ``html.escape`` first.
"""

from __future__ import annotations

import bisect
import html
import json
import math
import textwrap
from importlib import resources

from dynostat_report import __version__
from dynostat_report import thin as thinning
from dynostat_report.model import (
    AGENT_ERROR,
    CRASH,
    FORK_FAILURE,
    INFO,
    LIFECYCLE,
    PLATFORM_ERROR,
    RESTART,
    ROUTER_ERROR,
    WARN,
    Dyno,
    Series,
)
from dynostat_report.summary import first_failure_of, percentile, value_at
from dynostat_report.text import format_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dynostat_report.reader import Reader

# Points per series on a chart after thinning (runs of samples keep their min and max).
MAX_POINTS = 1200
# Markers per dyno; beyond this, markers of the most frequent kinds are thinned evenly.
MAX_MARKERS = 1500
# Columns of the overview heat map at most, and the bucket sizes it chooses from.
MAX_COLUMNS = 360
_BUCKETS_S = (20, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)

RED = "#d62728"

# Marker look per event kind: (row of the events strip, colour, symbol, size, name).
MARKERS = {
    WARN: ("dynostat", "#f0a202", "triangle-up", 11, "dynostat warning"),
    AGENT_ERROR: ("dynostat", "#e67e22", "triangle-down", 10, "dynostat error"),
    INFO: ("dynostat", "#3b8bd9", "circle-open", 8, "dynostat info"),
    FORK_FAILURE: ("app", "#a50f15", "star", 13, "fork/thread failed (EAGAIN)"),
    PLATFORM_ERROR: ("Heroku", RED, "diamond", 11, "Heroku error (R10, R14, R15…)"),
    CRASH: ("Heroku", "#111111", "x-thin-open", 14, "crash"),
    RESTART: ("Heroku", "#2471a3", "circle", 9, "restart"),
    LIFECYCLE: ("Heroku", "#95a5a6", "circle", 6, "exit, signal, state"),
    ROUTER_ERROR: ("router", "#8e44ad", "square", 9, "router error (H10, H12…)"),
}
EVENT_ROWS = ["router", "Heroku", "app", "dynostat"]

# Relative heights of a dyno chart's rows, top to bottom.
_ROW_WEIGHTS = {"events": 0.7, "tasks": 1.6, "memory": 1.6, "load": 0.8, "router": 1.2}
_ROW_GAP = 0.035


class Timeline:
    """Turns epoch seconds into the page's short time offsets."""

    def __init__(self, start: float) -> None:
        self.start = start

    def offset(self, time: float | None) -> float | None:
        if time is None:
            return None
        return round(time - self.start, 1)

    def offsets(self, times) -> list[float | None]:
        start = self.start
        return [None if time is None else round(time - start, 1) for time in times]


def _values(values) -> list[float | None]:
    return [None if value is None else round(value, 2) for value in values]


def _line_traces(
    timeline: Timeline,
    series: Series,
    name: str,
    color: str,
    *,
    width: float = 2.0,
    dash: str = "solid",
    filled: bool = False,
    unit: str = "",
    step: bool = False,
) -> list[dict]:
    """A series as a line (and, when filled, a shaded area under it), axes set later."""
    if step:
        times, values = thinning.steps(series.times, series.values)
    else:
        times, values = thinning.for_display(series.times, series.values, MAX_POINTS)
    x = timeline.offsets(times)
    y = _values(values)
    line = {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "legendgroup": name,
        "x": x,
        "y": y,
        "line": {"color": color, "width": width, "dash": dash, "shape": "hv" if step else "linear"},
        "hovertemplate": f"{name}: %{{y}}{unit}<br>%{{x|%H:%M:%S}} UTC<extra></extra>",
    }
    if not filled:
        return [line]
    # plotly.js fills across a break in the line, so the area is its own trace that drops
    # to zero at each silence: no shading where nothing was reported.
    area_x: list[float | None] = []
    area_y: list[float | None] = []
    for index, value in enumerate(y):
        if value is None:
            area_x.extend([x[index - 1], x[index + 1]])
            area_y.extend([0, 0])
        else:
            area_x.append(x[index])
            area_y.append(value)
    area = {
        "type": "scatter",
        "mode": "none",
        "name": name,
        "legendgroup": name,
        "showlegend": False,
        "x": area_x,
        "y": area_y,
        "fill": "tozeroy",
        "fillcolor": fill_color(color),
        "hoverinfo": "skip",
    }
    return [area, line]


def hover_text(line: str, width: int = 110) -> str:
    """A log line as plotly.js hover text: HTML-escaped and wrapped into short rows."""
    rows = textwrap.wrap(line, width, break_long_words=True, replace_whitespace=True) or [""]
    return "<br>".join(html.escape(row, quote=False) for row in rows[:12])


def fill_color(color: str, alpha: float = 0.18) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _pick(dyno: Dyno, *names: str) -> Series | None:
    for name in names:
        series = dyno.series.get(name)
        if series is not None and len(series):
            return series
    return None


def _markers(timeline: Timeline, dyno: Dyno) -> tuple[list[dict], int]:
    """One marker trace per event kind, and how many markers were left out to stay light."""
    by_kind: dict[str, list] = {}
    for event in dyno.events:
        by_kind.setdefault(event.kind, []).append(event)
    total = sum(len(events) for events in by_kind.values())
    omitted = 0
    traces = []
    for kind, (row, color, symbol, size, name) in MARKERS.items():
        events = by_kind.get(kind)
        if not events:
            continue
        if total > MAX_MARKERS:
            share = max(20, MAX_MARKERS * len(events) // total)
            if len(events) > share:
                stride = len(events) / share
                kept = [events[int(i * stride)] for i in range(share)]
                omitted += len(events) - len(kept)
                events = kept
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [timeline.offset(event.time) for event in events],
                "y": [row] * len(events),
                "text": [hover_text(event.line) for event in events],
                "customdata": [html.escape(event.label) for event in events],
                "xaxis": "x",
                "yaxis": "y",
                "legend": "legend",
                "marker": {
                    "color": color,
                    "symbol": symbol,
                    "size": size,
                    "line": {"width": 1.5 if symbol.endswith("open") else 0.5, "color": color},
                },
                "hovertemplate": "<b>%{customdata}</b> %{x|%H:%M:%S} UTC<br>%{text}<extra></extra>",
            }
        )
    return traces, omitted


def _router_traces(timeline: Timeline, dyno: Dyno, axis: str, errors_axis: str, legend: str):
    minutes = sorted(dyno.router)
    traces = []
    if minutes:
        p50, p95 = [], []
        for minute in minutes:
            service = sorted(dyno.router[minute].service_ms)
            p50.append(percentile(service, 0.5))
            p95.append(percentile(service, 0.95))
        times = [minute * 60.0 + 30.0 for minute in minutes]
        for name, values, color in (("p50", p50, "#2c7fb8"), ("p95", p95, "#f03b20")):
            # A minute without a request (the dyno was down, or idle) is a break.
            shown_times, shown_values = thinning.for_display(
                times, values, MAX_POINTS, silence_s=90.0
            )
            # A lone busy minute between idle ones would be a line of one point: no line at
            # all. Such traces show their points too.
            lone = any(
                shown_values[i] is not None
                and (i == 0 or shown_values[i - 1] is None)
                and (i + 1 == len(shown_values) or shown_values[i + 1] is None)
                for i in range(len(shown_values))
            )
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers" if lone else "lines",
                    "marker": {"size": 4, "color": color},
                    "name": f"service {name}",
                    "x": timeline.offsets(shown_times),
                    "y": _values(shown_values),
                    "xaxis": "x",
                    "yaxis": axis,
                    "legend": legend,
                    "line": {"color": color, "width": 1.6},
                    "hovertemplate": f"service {name}: %{{y}} ms<br>minute %{{x|%H:%M}} UTC"
                    "<extra></extra>",
                }
            )
    per_code: dict[str, dict[int, int]] = {}
    for event in dyno.events:
        if event.kind == ROUTER_ERROR:
            counts = per_code.setdefault(event.label, {})
            minute = int(event.time // 60)
            counts[minute] = counts.get(minute, 0) + 1
    palette = ("#8e44ad", "#c2185b", "#6d4c41", "#00897b", "#5e35b1")
    for index, code in enumerate(sorted(per_code)):
        counts = per_code[code]
        ordered = sorted(counts)
        traces.append(
            {
                "type": "bar",
                "name": f"{code} per minute",
                "x": [timeline.offset(minute * 60.0 + 30.0) for minute in ordered],
                "y": [counts[minute] for minute in ordered],
                "xaxis": "x",
                "yaxis": errors_axis,
                "legend": legend,
                "marker": {"color": palette[index % len(palette)]},
                "opacity": 0.55,
                "width": 55_000,
                "hovertemplate": f"{code}: %{{y}} in minute %{{x|%H:%M}} UTC<extra></extra>",
            }
        )
    return traces


def _tasks_row(timeline: Timeline, dyno: Dyno) -> list[dict]:
    traces = []
    for name, label, color, style in (
        ("zombies", "zombies", "#8e44ad", {"width": 1.2, "filled": True}),
        ("threads", "threads", "#7fa7d9", {"width": 1.2, "dash": "dot"}),
        ("tasks", "tasks", "#1f5fbf", {"width": 2.2}),
    ):
        series = _pick(dyno, name)
        if series is not None:
            traces.extend(_line_traces(timeline, series, label, color, **style))
    limit = _pick(dyno, "tasks_limit")
    if limit is not None and traces:
        traces.extend(
            _line_traces(timeline, limit, "tasks limit", RED, width=1.6, dash="dash", step=True)
        )
    return traces


def _memory_row(timeline: Timeline, dyno: Dyno) -> list[dict]:
    traces = []
    swap = _pick(dyno, "memory_swap", "heroku:memory_swap")
    if swap is not None and max(swap.values) > 0:
        traces.extend(
            _line_traces(timeline, swap, "swap", "#e67e22", width=1.2, filled=True, unit=" MB")
        )
    rss = _pick(dyno, "memory_rss")
    if rss is not None:
        traces.extend(_line_traces(timeline, rss, "rss", "#66c2a5", width=1.2, unit=" MB"))
    total = _pick(dyno, "memory_total")
    if total is not None:
        traces.extend(_line_traces(timeline, total, "total", "#138d75", width=2.2, unit=" MB"))
    heroku_total = _pick(dyno, "heroku:memory_total")
    if heroku_total is not None:
        # Beside dynostat's own total, Heroku's is a thin dotted line; alone, it is the line.
        style = {"width": 1.4, "dash": "dot"} if total is not None else {"width": 2.2}
        label = "total (Heroku)" if total is not None else "total"
        traces.extend(_line_traces(timeline, heroku_total, label, "#5d6d7e", unit=" MB", **style))
    quota = _pick(dyno, "memory_quota", "heroku:memory_quota")
    if quota is not None and traces:
        traces.extend(
            _line_traces(
                timeline, quota, "quota", RED, width=1.6, dash="dash", step=True, unit=" MB"
            )
        )
    return traces


def _load_row(timeline: Timeline, dyno: Dyno) -> list[dict]:
    traces = []
    for names, label, color, width in (
        (("load_avg_15m", "heroku:load_avg_15m"), "15m", "#b3b6b7", 1.2),
        (("load_avg_1m", "heroku:load_avg_1m"), "1m", "#34495e", 1.6),
    ):
        series = _pick(dyno, *names)
        if series is not None:
            traces.extend(_line_traces(timeline, series, label, color, width=width))
    return traces


def dyno_figure(dyno: Dyno, summary: dict, timeline: Timeline, releases: list) -> dict:
    """One dyno's chart: events, tasks, memory, load and router rows on one time axis."""
    marker_traces, omitted = _markers(timeline, dyno)
    rows: dict[str, list[dict]] = {"events": marker_traces}
    for name, traces in (
        ("tasks", _tasks_row(timeline, dyno)),
        ("memory", _memory_row(timeline, dyno)),
        ("load", _load_row(timeline, dyno)),
    ):
        if traces:
            rows[name] = traces
    if dyno.router_requests or any(e.kind == ROUTER_ERROR for e in dyno.events):
        rows["router"] = []  # its traces are made once its two axes are known
    figure = _assemble(dyno, timeline, rows)
    _moments(figure["layout"], dyno, summary, timeline, releases)
    figure["omitted_markers"] = omitted
    return figure


def _assemble(dyno: Dyno, timeline: Timeline, rows: dict[str, list[dict]]) -> dict:
    names = [name for name in ("events", "tasks", "memory", "load", "router") if name in rows]
    weights = [_ROW_WEIGHTS[name] for name in names]
    usable = 1.0 - _ROW_GAP * (len(names) - 1)
    layout: dict = {
        "height": 190 + int(sum(weights) * 95),
        "margin": {"l": 64, "r": 190, "t": 62, "b": 70},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "hovermode": "closest",
        "hoverlabel": {"align": "left", "namelength": -1},
        "bargap": 0,
        "showlegend": True,
        "xaxis": {
            "type": "date",
            "showgrid": True,
            "gridcolor": "#eef0f2",
            "showspikes": True,
            "spikemode": "across",
            "spikesnap": "cursor",
            "spikethickness": 1,
            "spikecolor": "#888",
            "spikedash": "dot",
            "ticks": "outside",
        },
        "shapes": [],
        "annotations": [],
    }
    data: list[dict] = []
    top = 1.0
    titles = {
        "events": "",
        "tasks": "tasks",
        "memory": "memory MB",
        "load": "load",
        "router": "router ms",
    }
    for index, name in enumerate(names):
        height = usable * weights[index] / sum(weights)
        bottom = max(0.0, top - height)
        axis_number = index + 1
        axis_key = "yaxis" if axis_number == 1 else f"yaxis{axis_number}"
        axis_ref = "y" if axis_number == 1 else f"y{axis_number}"
        legend_key = "legend" if axis_number == 1 else f"legend{axis_number}"
        axis = {
            "domain": [round(bottom, 4), round(top, 4)],
            "anchor": "x",
            "title": {"text": titles[name], "font": {"size": 11, "color": "#555"}},
            "gridcolor": "#eef0f2",
            "zeroline": False,
            "rangemode": "tozero",
            "fixedrange": True,
        }
        if name == "events":
            axis.update(
                {
                    "type": "category",
                    "categoryorder": "array",
                    "categoryarray": EVENT_ROWS,
                    "range": [-0.6, len(EVENT_ROWS) - 0.4],
                    "rangemode": "normal",
                    "tickfont": {"size": 10, "color": "#666"},
                    "showgrid": True,
                }
            )
        layout[axis_key] = axis
        if name == "events":
            # The marker key runs along the bottom: the events row is too short for it.
            layout[legend_key] = {
                "orientation": "h",
                "x": 0,
                "xanchor": "left",
                "y": -0.045,
                "yanchor": "top",
                "font": {"size": 11},
                "bgcolor": "rgba(255,255,255,0)",
            }
        else:
            layout[legend_key] = {
                # The router row's right axis (errors per minute) needs room before its key.
                "x": 1.07 if name == "router" else 1.01,
                "xanchor": "left",
                "y": top,
                "yanchor": "top",
                "font": {"size": 11},
                "tracegroupgap": 2,
                "bgcolor": "rgba(255,255,255,0)",
            }
        if name == "router":
            errors_number = len(names) + 1
            errors_ref = f"y{errors_number}"
            traces = _router_traces(timeline, dyno, axis_ref, errors_ref, legend_key)
            layout[f"yaxis{errors_number}"] = {
                "overlaying": axis_ref,
                "side": "right",
                "anchor": "x",
                "title": {"text": "errors/min", "font": {"size": 10, "color": "#8e44ad"}},
                "showgrid": False,
                "rangemode": "tozero",
                "fixedrange": True,
                "tickfont": {"size": 10, "color": "#8e44ad"},
                # Counts: whole ticks (one apart while they are few).
                "tickformat": ",d",
                **({"dtick": 1} if _most_errors_per_minute(traces) <= 5 else {}),
            }
        else:
            traces = rows[name]
            for trace in traces:
                trace["yaxis"] = axis_ref
                trace["legend"] = legend_key
        data.extend(traces)
        top = bottom - _ROW_GAP
        layout["xaxis"]["anchor"] = axis_ref  # the time axis sits under the bottom row

    return {"data": data, "layout": layout}


def _moments(layout: dict, dyno: Dyno, summary: dict, timeline: Timeline, releases) -> None:
    """Vertical lines at crashes and releases, and the first warning and first failure."""
    shapes = layout["shapes"]
    annotations = layout["annotations"]
    crashes = [event for event in dyno.events if event.kind == CRASH]
    for event in crashes[:50]:
        x = timeline.offset(event.time)
        shapes.append(_vertical_line(x, RED, 1.5, "dash"))
    for time, label, line in _grouped_releases(releases)[:50]:
        x = timeline.offset(time)
        shapes.append(_vertical_line(x, "#7f8c8d", 1, "dot"))
        annotations.append(
            {
                "x": x,
                "xref": "x",
                "y": 1.0,
                "yref": "paper",
                "yanchor": "bottom",
                "text": html.escape(label),
                "showarrow": False,
                "font": {"size": 10, "color": "#7f8c8d"},
                "hovertext": hover_text(line),
            }
        )
    warning = summary.get("first_warning")
    failure = summary.get("first_failure")
    span = max(timeline_span(dyno), 1.0)
    if warning is not None:
        event = next(e for e in dyno.events if e.is_early_warning)
        text = f"first warning: {html.escape(warning['event'])}"
        lead = summary.get("warning_lead_s")
        if lead is not None and lead > 0:
            text += f", {format_duration(lead)} ahead"
        side = "left" if (event.time - dyno.first) / span < 0.3 else "right"
        annotations.append(_flag(timeline.offset(event.time), text, "#b9770e", side, -40))
    if failure is not None:
        event = first_failure_of(dyno)
        text = f"first failure: {html.escape(failure['what'])}"
        side = "right" if (event.time - dyno.first) / span > 0.75 else "left"
        annotations.append(_flag(timeline.offset(event.time), text, RED, side, -18))


def timeline_span(dyno: Dyno) -> float:
    return dyno.last - dyno.first if dyno.last >= dyno.first else 0.0


def _most_errors_per_minute(traces: list[dict]) -> int:
    return max((max(t["y"]) for t in traces if t["type"] == "bar" and t["y"]), default=0)


def _grouped_releases(releases) -> list[tuple[float, str, str]]:
    """Releases within a minute of each other (a deploy and its release) as one line."""
    groups: list[tuple[float, str, str]] = []
    for release in releases:
        if groups and release.time - groups[-1][0] <= 60:
            time, label, line = groups[-1]
            groups[-1] = (time, f"{label}, {release.label}", f"{line}\n{release.line}")
        else:
            groups.append((release.time, release.label, release.line))
    return groups


def _flag(x: float | None, text: str, color: str, side: str, rise: int) -> dict:
    """A label above the chart pointing at a moment; warnings lean left and stand higher
    than failures, so the two never cover each other when they are close."""
    return {
        "x": x,
        "xref": "x",
        "y": 1.0,
        "yref": "paper",
        "xanchor": side,
        "yanchor": "bottom",
        "text": f"<b>{text}</b>",
        "showarrow": True,
        "arrowhead": 2,
        "arrowcolor": color,
        "ax": -8 if side == "right" else 8,
        "ay": rise,
        "font": {"size": 11, "color": color},
        "bgcolor": "rgba(255,255,255,0.85)",
    }


# -- the overview heat map ----------------------------------------------------------------


def _bucket_pcts(
    value: Series | None, limit: Series | None, start: float, size: float, columns: int
) -> list[float | None]:
    """Per column of the heat map, the highest sample as a percentage of its limit.

    Samples are in time order, so each column is a slice found by bisection and its
    maximum is taken in C; the limit is the one in force at the column's highest sample.
    """
    cells: list[float | None] = [None] * columns
    if value is None or limit is None or not len(value) or not len(limit):
        return cells
    times, values = value.times, value.values
    for column in range(columns):
        low = bisect.bisect_left(times, start + column * size)
        high = bisect.bisect_left(times, start + (column + 1) * size)
        if low == high:
            continue
        run = values[low:high]
        highest = max(run)
        ceiling = value_at(limit, times[low + run.index(highest)])
        if ceiling:
            cells[column] = highest * 100.0 / ceiling
    return cells


def heatmap_figure(dynos: list[Dyno], first: float, last: float, timeline: Timeline) -> dict:
    """Every dyno's closeness to its nearest limit over time, worst dynos on top."""
    span = max(last - first, 1.0)
    size = next((b for b in _BUCKETS_S if span / b <= MAX_COLUMNS), _BUCKETS_S[-1])
    start = math.floor(first / size) * size
    columns = int((last - start) // size) + 1
    z, tasks_text, memory_text = [], [], []
    crash_x, crash_y, crash_text = [], [], []
    for dyno in dynos:
        memory = _pick(dyno, "memory_total")
        quota = _pick(dyno, "memory_quota")
        if memory is None or quota is None:
            memory = _pick(dyno, "heroku:memory_total")
            quota = _pick(dyno, "heroku:memory_quota")
        task_cells = _bucket_pcts(
            _pick(dyno, "tasks"), _pick(dyno, "tasks_limit"), start, size, columns
        )
        memory_cells = _bucket_pcts(memory, quota, start, size, columns)
        row = []
        for task_pct, memory_pct in zip(task_cells, memory_cells):
            known = [pct for pct in (task_pct, memory_pct) if pct is not None]
            row.append(round(min(max(known), 100.0), 1) if known else None)
        z.append(row)
        tasks_text.append(["\u2013" if p is None else f"{p:.0f}%" for p in task_cells])
        memory_text.append(["\u2013" if p is None else f"{p:.0f}%" for p in memory_cells])
        for event in dyno.events:
            if event.kind == CRASH:
                crash_x.append(timeline.offset(event.time))
                crash_y.append(html.escape(dyno.name))
                crash_text.append(event.line)
    # Names are axis labels, which plotly.js reads as its subset of HTML: escaped.
    names = [html.escape(dyno.name) for dyno in dynos]
    x = [timeline.offset(start + (column + 0.5) * size) for column in range(columns)]
    data = [
        {
            "type": "heatmap",
            "x": x,
            "y": names,
            "z": z,
            "zmin": 0,
            "zmax": 100,
            "xgap": 0,
            "ygap": 1,
            "colorscale": [
                [0.0, "#e8f5e9"],
                [0.5, "#a5d6a7"],
                [0.7, "#ffe082"],
                [0.8, "#ffb74d"],
                [0.9, "#ef5350"],
                [1.0, "#8e0000"],
            ],
            "colorbar": {
                "title": {"text": "% of limit", "side": "right", "font": {"size": 11}},
                "ticksuffix": "%",
                "thickness": 12,
                "len": 1.0,
            },
            "customdata": [
                [[tasks_text[r][c], memory_text[r][c]] for c in range(columns)]
                for r in range(len(names))
            ],
            "hovertemplate": "<b>%{y}</b> %{x|%H:%M} UTC<br>tasks %{customdata[0]} of limit"
            "<br>memory %{customdata[1]} of quota<extra></extra>",
            "hoverongaps": False,
        }
    ]
    if crash_x:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "crash",
                "x": crash_x,
                "y": crash_y,
                "text": [hover_text(line) for line in crash_text],
                "marker": {
                    "symbol": "x-thin-open",
                    "size": 12,
                    "color": "#111",
                    "line": {"width": 2, "color": "#111"},
                },
                "hovertemplate": "<b>crash</b> %{x|%H:%M:%S} UTC<br>%{text}<extra></extra>",
                "showlegend": False,
            }
        )
    return {
        "data": data,
        "layout": {
            # Rows stay readable with a few dynos and the map stays on a screen with 50.
            "height": max(150, 70 + (22 if len(names) <= 15 else 15) * len(names)),
            "margin": {"l": 150, "r": 190, "t": 10, "b": 36},
            "font": {
                "family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
                "size": 12,
            },
            "xaxis": {"type": "date", "ticks": "outside", "showgrid": False},
            # Worst dyno on top; the range is set, as markers would pad an automatic one.
            "yaxis": {
                "range": [len(names) - 0.5, -0.5],
                "type": "category",
                "fixedrange": True,
                "tickfont": {"size": 11},
            },
            "hovermode": "closest",
            "paper_bgcolor": "#ffffff",
            "plot_bgcolor": "#f7f8f9",
        },
    }


# -- the page -----------------------------------------------------------------------------


def _asset(name: str) -> str:
    return resources.files("dynostat_report").joinpath("assets", name).read_text("utf-8")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs  # noqa: PLC0415 - only the page needs it

    return get_plotlyjs()


def _script_json(value: object) -> str:
    """JSON that cannot end the ``<script>`` element it sits in, whatever a log line held."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def anchor(index: int) -> str:
    return f"dyno-{index}"


def page_data(reader: Reader, summary: dict) -> dict:
    """Everything the page's script draws: the overview and one figure per dyno."""
    order = list(summary["dynos"])
    dynos = [reader.dynos[name] for name in order]
    first = reader.first if math.isfinite(reader.first) else 0.0
    last = reader.last if math.isfinite(reader.last) else first
    timeline = Timeline(first)
    figures = []
    for index, dyno in enumerate(dynos):
        figure = dyno_figure(dyno, summary["dynos"][dyno.name], timeline, reader.releases)
        figures.append(
            {
                "name": dyno.name,
                "anchor": anchor(index),
                "figure": {"data": figure["data"], "layout": figure["layout"]},
                "omitted_markers": figure["omitted_markers"],
            }
        )
    return {
        "start_ms": round(first * 1000),
        "range": [0.0, round(last - first, 1)],
        "overview": heatmap_figure(dynos, first, last, timeline) if dynos else None,
        "dynos": figures,
        # By the name as the heat map shows it (escaped), for a click on a row.
        "anchors": {html.escape(dyno.name): anchor(index) for index, dyno in enumerate(dynos)},
    }


def render(reader: Reader, summary: dict, inputs: list[str]) -> str:
    """The whole page as text."""
    from dynostat_report import sections  # noqa: PLC0415 - keeps this module's imports short

    data = page_data(reader, summary)
    title = "dynostat report"
    if summary["first"]:
        title += f" · {summary['first'][:16].replace('T', ' ')} UTC"
    body = sections.body(summary, data, inputs)
    # Each dyno's figure in its own element, parsed only when its chart is drawn: opening a
    # report of 50 dynos parses the few figures on screen, not all of them.
    overview = {key: value for key, value in data.items() if key != "dynos"}
    overview["dynos"] = [{"name": entry["name"]} for entry in data["dynos"]]
    figures = "".join(
        f'<script type="application/json" id="figure-{index}">'
        f"{_script_json(entry['figure'])}</script>\n"
        for index, entry in enumerate(data["dynos"])
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="dynostat-report {__version__}">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{_asset('report.css')}\n</style>\n"
        "</head>\n<body>\n"
        f"{body}\n"
        f'<script type="application/json" id="dynostat-data">{_script_json(overview)}</script>\n'
        f"{figures}"
        f"<script>\n{_plotly_js()}\n</script>\n"
        f"<script>\n{_asset('report.js')}\n</script>\n"
        "</body>\n</html>\n"
    )


def _vertical_line(x: float, color: str, width: float, dash: str) -> dict:
    """A line across the whole chart's height at ``x``: a crash, a release."""
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "width": width, "dash": dash},
    }
