"""The page's text: the headline findings, the summary table, and the frame of each chart.

Every value that came from a log goes through ``html.escape`` here.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone

from dynostat_report import __version__, text, thin

# What an empty cell shows (an en dash).
NOTHING = "\u2013"

# Metrics the charts leave out and that are not news either: the agent's own cost, page
# counters, the middle load average, Heroku's copies of what the charts show.
NOT_LISTED_METRICS = (
    "heroku:",
    "load_avg_5m",
    "memory_cache",
    "memory_pgpg",
    "processes",
    "agent_",
    "push_dropped",
)

# A dyno at or above this share of a limit is named among the findings even without a failure.
FINDING_PCT = 80.0
MAX_FINDINGS = 6
# Dynos shown in the summary table before the rest are folded away.
TABLE_ROWS = 12

# Metrics every chart already shows; any other metric is listed under the chart by name.
SHOWN_METRICS = frozenset(
    {
        "tasks",
        "tasks_limit",
        "threads",
        "zombies",
        "memory_total",
        "memory_rss",
        "memory_swap",
        "memory_quota",
        "load_avg_1m",
        "load_avg_15m",
    }
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _level(pct: float | None) -> str:
    if pct is None:
        return "none"
    if pct >= 95:
        return "bad"
    if pct >= FINDING_PCT:
        return "warn"
    return "ok"


def _bar(value: str, pct: float | None) -> str:
    width = 0.0 if pct is None else max(0.0, min(pct, 100.0))
    label = "" if pct is None else f'<span class="pct">{pct:.0f}%</span>'
    return (
        f'<div class="cell-bar {_level(pct)}"><div class="fill" style="width:{width:.1f}%">'
        f'</div><span class="value">{_e(value)}</span>{label}</div>'
    )


def _finding(name: str, dyno: dict, anchor: str) -> str:
    """One sentence: the limit it came closest to, what failed, who was named, and when."""
    limits = []
    if dyno["peak_tasks"] is not None:
        limit = dyno["tasks_limit"]
        of = f" of {text.amount(limit)}" if limit is not None else ""
        pct = dyno["peak_tasks_pct"]
        share = f" ({pct:.0f}% of the limit)" if pct is not None else ""
        limits.append(
            (
                pct or 0,
                f"reached <b>{text.amount(dyno['peak_tasks'])}{of} tasks</b>{share} at "
                f"{text.clock(dyno['peak_tasks_at'])}",
            )
        )
    if dyno["peak_memory_mb"] is not None:
        quota = dyno["memory_quota_mb"]
        of = f" of {text.amount(quota)}" if quota is not None else ""
        pct = dyno["peak_memory_pct"]
        share = f" ({pct:.0f}% of the quota)" if pct is not None else ""
        limits.append(
            (
                pct or 0,
                f"used <b>{text.amount(dyno['peak_memory_mb'])}{of} MB</b> of memory{share} "
                f"at {text.clock(dyno['peak_memory_at'])}",
            )
        )
    limits.sort(key=lambda item: -item[0])
    # The closest limit always; the other only when it was near too.
    parts = [phrase for number, (pct, phrase) in enumerate(limits) if number == 0 or pct >= 50]
    sentence = f'<a href="#{_e(anchor)}"><b>{_e(name)}</b></a> ' + (
        " and ".join(parts) if parts else "logged no metrics"
    )
    failures = text.failures(dyno)
    if failures:
        sentence += f"; {_e(', '.join(failures))}"
    sentence += "."
    culprits = text.culprits(dyno)
    if culprits:
        sentence += f" The agent named <code>{_e('; '.join(culprits))}</code>."
    timing = text.timing(dyno)
    if timing:
        sentence += f" {_e(timing[0].upper() + timing[1:])}."
    return f"<li>{sentence}</li>"


def findings(summary: dict, anchors: dict[str, str]) -> str:
    items = []
    for name, dyno in summary["dynos"].items():
        failed = bool(
            dyno["errors"] or dyno["crashes"] or dyno["fork_failures"] or dyno["warnings"]
        )
        close = (dyno["closest_to_limit_pct"] or 0) >= FINDING_PCT
        if failed or close:
            items.append(_finding(name, dyno, anchors[name]))
        if len(items) == MAX_FINDINGS:
            break
    if not items:
        if not summary["dynos"]:
            return '<p class="quiet">No dynostat, router or Heroku dyno lines were found.</p>'
        return (
            '<p class="quiet">No dyno came within 80% of a limit, and no warning, error or '
            "crash was logged.</p>"
        )
    more = len(summary["dynos"]) - len(items)
    tail = f'<p class="more">{more} more dynos in the table below.</p>' if more > 0 else ""
    return f'<ul class="findings">{"".join(items)}</ul>{tail}'


def table(summary: dict, anchors: dict[str, str]) -> str:
    rows = []
    for name, dyno in summary["dynos"].items():
        tasks = NOTHING
        if dyno["peak_tasks"] is not None:
            limit = dyno["tasks_limit"]
            tasks = text.amount(dyno["peak_tasks"])
            if limit is not None:
                tasks += f" / {text.amount(limit)}"
        memory = NOTHING
        if dyno["peak_memory_mb"] is not None:
            quota = dyno["memory_quota_mb"]
            memory = f"{dyno['peak_memory_mb']:.0f}"
            memory += f" / {quota:.0f} MB" if quota is not None else " MB"
        problems = text.failures(dyno)
        warned = NOTHING
        lead = dyno["warning_lead_s"]
        if lead is not None:
            warned = (
                f"{text.format_duration(lead)} before"
                if lead > 0
                else f"{text.format_duration(lead)} after"
            )
        elif dyno["first_failure"] is not None:
            warned = "no warning"
        rows.append(
            "<tr>"
            f'<td class="name"><a href="#{_e(anchors[name])}">{_e(name)}</a></td>'
            f"<td>{_bar(tasks, dyno['peak_tasks_pct'])}</td>"
            f"<td>{_bar(memory, dyno['peak_memory_pct'])}</td>"
            f'<td class="num">{_e(text.amount(dyno["peak_zombies"]))}</td>'
            f'<td class="num">{_e(text.amount(dyno["peak_load_1m"]))}</td>'
            f'<td class="{"problems" if problems else ""}">'
            f"{_e(', '.join(problems)) or NOTHING}</td>"
            f'<td class="warned">{_e(warned)}</td>'
            f'<td class="culprits">{_e("; ".join(text.culprits(dyno))) or NOTHING}</td>'
            "</tr>"
        )
    head = (
        "<thead><tr><th>Dyno</th><th>Peak tasks / limit</th>"
        "<th>Peak memory / quota</th><th>Zombies</th><th>Load 1m</th>"
        "<th>Errors, crashes</th><th>Warned before failure</th><th>Culprits named</th>"
        "</tr></thead>"
    )
    first = f'<table class="summary">{head}<tbody>{"".join(rows[:TABLE_ROWS])}</tbody></table>'
    if len(rows) <= TABLE_ROWS:
        return first
    # The rest, further from their limits, folded away (and open when printed).
    return (
        f'{first}<details class="more-dynos"><summary>{len(rows) - TABLE_ROWS} more dynos, '
        f'further from their limits</summary><table class="summary">{head}<tbody>'
        f"{''.join(rows[TABLE_ROWS:])}</tbody></table></details>"
    )


def _dyno_notes(dyno: dict, omitted: int) -> str:
    notes = []
    if dyno["dyno_ids"]:
        ids = ", ".join(dyno["dyno_ids"][:3])
        more = len(dyno["dyno_ids"]) - 3
        notes.append(f"dyno {ids}" + (f" and {more} more" if more > 0 else ""))
    if dyno["interval_s"] is not None:
        notes.append(f"a sample every {text.format_duration(dyno['interval_s'])}")
    gap = dyno["longest_gap_s"]
    interval = dyno["interval_s"]
    # The same silence that breaks the chart's line (thin.py).
    if gap is not None and interval and gap > max(thin.GAP_MIN_S, thin.GAP_INTERVALS * interval):
        notes.append(
            f"silent for {text.format_duration(gap)} from {text.clock(dyno['longest_gap_at'])}"
        )
    if dyno["router"] is not None:
        router = dyno["router"]
        notes.append(
            f"{router['requests']:,} requests, p50 {text.amount(router['service_p50_ms'])} ms, "
            f"p95 {text.amount(router['service_p95_ms'])} ms"
        )
    others = [
        f"{name} (peak {text.amount(metric['peak'])}{metric.get('unit', '')})"
        for name, metric in dyno["metrics"].items()
        if name not in SHOWN_METRICS and not name.startswith(NOT_LISTED_METRICS)
    ]
    if others:
        notes.append("also reported: " + ", ".join(others))
    if omitted:
        notes.append(f"{omitted:,} markers not drawn to keep the chart light (all are counted)")
    return " · ".join(_e(note) for note in notes)


def dyno_sections(summary: dict, figures: list[dict]) -> str:
    parts = []
    for index, figure in enumerate(figures):
        name = figure["name"]
        dyno = summary["dynos"][name]
        parts.append(
            f'<article class="dyno" id="{_e(figure["anchor"])}">'
            f'<div class="dyno-head"><h3>{_e(name)}</h3>'
            f'<span class="peaks">{_e("  ·  ".join(text.peaks(dyno) + text.failures(dyno)))}'
            "</span></div>"
            f'<p class="notes">{_dyno_notes(dyno, figure["omitted_markers"])}</p>'
            f'<div class="chart" data-index="{index}">'
            '<div class="placeholder">drawing…</div></div></article>'
        )
    return "".join(parts)


def legend() -> str:
    rows = [
        (
            "tri-warn",
            "dynostat warning (<code>at=warn</code>): tasks or memory near the limit, "
            "zombies or threads rising, swapping; hover for the line and the process named",
        ),
        ("tri-error", "dynostat error or info line (<code>at=error</code>, <code>at=info</code>)"),
        (
            "diamond",
            "Heroku error: R10 boot timeout, R14 memory quota exceeded, R15 vastly "
            "exceeded (the dyno is killed), R12 exit timeout…",
        ),
        (
            "square",
            "router error: H10 app crashed, H12 request timeout, H13 connection closed, "
            "H18 request interrupted…",
        ),
        ("star", "the app could not create a process or thread (EAGAIN): the task limit bit"),
        ("cross", "crash (state changed to crashed), also a dashed red line across the chart"),
        ("dot", "restart, exit status, SIGTERM/SIGKILL, state changes"),
    ]
    items = "".join(f'<li><span class="mark {cls}"></span>{label}</li>' for cls, label in rows)
    return (
        '<section class="legend"><h2>Reading the charts</h2><ul class="marks">'
        f"{items}</ul><p>Limits are dashed red lines. Charts show every spike: long series "
        "keep each stretch's lowest and highest sample; the summary uses every sample. Drag "
        "to zoom (all charts follow), double-click to zoom out, hover for values; the camera "
        "icon saves a chart as PNG. Times are UTC.</p></section>"
    )


def body(summary: dict, data: dict, inputs: list[str]) -> str:
    anchors = {entry["name"]: entry["anchor"] for entry in data["dynos"]}
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notes = "".join(f"<li>{_e(note)}</li>" for note in summary["notes"])
    sources = ", ".join(_e(name if name != "-" else "stdin") for name in inputs) or "stdin"
    unattributed = ""
    if summary["unattributed_errors"]:
        unattributed = (
            '<p class="more">Router errors naming no dyno: '
            f"{_e(text.counts(summary['unattributed_errors']))}</p>"
        )
    overview = ""
    if data["overview"] is not None:
        overview = (
            '<section class="overview"><h2>Every dyno: share of its nearest limit '
            '<span class="hint">(tasks or memory, whichever is closer; click a row to see '
            'that dyno)</span></h2><div id="overview-chart" class="chart-wide"></div></section>'
        )
    return (
        '<header class="top"><h1>dynostat report</h1>'
        f'<p class="meta">{_e(text.overview(summary))}</p></header>'
        f'<section class="what"><h2>What happened</h2>{findings(summary, anchors)}'
        f"{unattributed}</section>"
        f'<section class="table">{table(summary, anchors)}</section>'
        f"{overview}"
        f'<section class="dynos">{dyno_sections(summary, data["dynos"])}</section>'
        f"{legend()}"
        f"<footer><p>Made by dynostat-report {_e(__version__)} on {_e(generated)} from "
        f"{sources}.</p>{f'<ul>{notes}</ul>' if notes else ''}</footer>"
    )
