"""The summary in words: for the terminal, and the same sentences at the top of the page.

Dynos are listed closest to a limit first; each gets one line of peaks and failures, its
culprits, and when the first warning came against the first failure.
"""

from __future__ import annotations

MAX_TEXT_DYNOS = 15


def format_duration(seconds: float) -> str:
    """``44.7 s``, ``3 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if whole < 86400:
        hours, rest = divmod(whole // 60, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, rest = divmod(whole // 3600, 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


def clock(iso_time: str | None) -> str:
    """``2026-11-27T05:27:22.035Z`` as ``05:27:22``."""
    return iso_time[11:19] if iso_time else "?"


def amount(value: float | int | None) -> str:
    if value is None:
        return "?"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def counts(mapping: dict[str, int]) -> str:
    """``{"R14": 36, "H12": 10}`` as ``36 R14, 10 H12``."""
    return ", ".join(f"{count:,} {name}" for name, count in mapping.items())


def peaks(dyno: dict) -> list[str]:
    """The peaks of one dyno as short phrases: tasks, memory, zombies."""
    parts = []
    if dyno["peak_tasks"] is not None:
        limit = f"/{amount(dyno['tasks_limit'])}" if dyno["tasks_limit"] is not None else ""
        pct = f" ({dyno['peak_tasks_pct']:.0f}%)" if dyno["peak_tasks_pct"] is not None else ""
        parts.append(f"tasks {amount(dyno['peak_tasks'])}{limit}{pct}")
    if dyno["peak_memory_mb"] is not None:
        quota = dyno["memory_quota_mb"]
        limit = f"/{amount(quota)}" if quota is not None else ""
        pct = f" ({dyno['peak_memory_pct']:.0f}%)" if dyno["peak_memory_pct"] is not None else ""
        parts.append(f"memory {amount(dyno['peak_memory_mb'])}{limit} MB{pct}")
    if dyno["peak_zombies"]:
        parts.append(f"zombies {amount(dyno['peak_zombies'])}")
    return parts


def failures(dyno: dict) -> list[str]:
    parts = []
    if dyno["errors"]:
        parts.append(counts(dyno["errors"]))
    if dyno["fork_failures"]:
        parts.append(f"{dyno['fork_failures']:,} EAGAIN")
    if dyno["crashes"]:
        parts.append(f"{dyno['crashes']} crash" + ("es" if dyno["crashes"] > 1 else ""))
    if dyno["restarts"]:
        parts.append(f"{dyno['restarts']} restart" + ("s" if dyno["restarts"] > 1 else ""))
    return parts


def culprits(dyno: dict) -> list[str]:
    """``pid 8 leaky_worker (3 tasks_near_limit, 1 zombies_rising)`` per named process."""
    by_process: dict[tuple[int, str], list[str]] = {}
    for culprit in dyno["culprits"]:
        key = (culprit["pid"], culprit["comm"])
        by_process.setdefault(key, []).append(f"{culprit['count']} {culprit['event']}")
    return [
        f"pid {pid} {_printable(comm)} ({', '.join(events)})"
        for (pid, comm), events in by_process.items()
    ]


def timing(dyno: dict) -> str | None:
    """When the first warning came against the first failure, in one sentence."""
    warning = dyno["first_warning"]
    failure = dyno["first_failure"]
    if failure is None:
        if warning is None:
            return None
        return f"first warning {clock(warning['at'])} ({warning['event']}), no failure seen"
    failed = f"first failure {clock(failure['at'])} ({_printable(failure['what'])})"
    if warning is None:
        return f"{failed}, with no dynostat warning before it"
    warned = f"first warning {clock(warning['at'])} ({warning['event']})"
    lead = dyno["warning_lead_s"]
    if lead is not None and lead > 0:
        return f"{warned}, {failed}: warned {format_duration(lead)} before"
    if lead == 0:
        return f"{warned}, {failed}: at the same moment"
    return f"{failed}, {warned}: the warning came {format_duration(lead or 0)} after"


def _printable(text: str) -> str:
    """Text safe for a terminal: control characters (escape sequences) made visible."""
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)


def overview(summary: dict) -> str:
    dynos = summary["dynos"]
    span = ""
    if summary["first"] and summary["last"]:
        first, last = summary["first"], summary["last"]
        span = f", {first[:10]} {clock(first)} to "
        span += f"{'' if last[:10] == first[:10] else last[:10] + ' '}{clock(last)} UTC"
    skipped = summary["skipped_lines"]
    reasons = ", ".join(f"{count} {reason}" for reason, count in summary["skipped"].items())
    skipped_text = f", {skipped:,} skipped ({reasons})" if skipped else ", none skipped"
    plural = "dyno" if len(dynos) == 1 else "dynos"
    return f"{len(dynos)} {plural}{span}; {summary['lines']:,} lines read{skipped_text}"


def render(summary: dict, limit: int = MAX_TEXT_DYNOS) -> str:
    """The terminal summary."""
    out = [f"dynostat-report: {overview(summary)}"]
    dynos = summary["dynos"]
    if not dynos:
        out.append("No dynostat, router or Heroku dyno lines found in the input.")
    width = max((len(_printable(name)) for name in list(dynos)[:limit]), default=0)
    for name, dyno in list(dynos.items())[:limit]:
        head = "  ".join(peaks(dyno) + failures(dyno)) or "no metrics"
        out.append("")
        out.append(f"{_printable(name):<{width}}  {head}")
        indent = " " * (width + 2)
        for text in culprits(dyno):
            out.append(f"{indent}culprit {text}")
        sentence = timing(dyno)
        if sentence:
            out.append(f"{indent}{sentence}")
    if len(dynos) > limit:
        out.append("")
        out.append(f"… and {len(dynos) - limit} more dynos, further from their limits.")
    if summary["unattributed_errors"]:
        out.append("")
        out.append(f"Router errors naming no dyno: {counts(summary['unattributed_errors'])}")
    for note in summary["notes"]:
        out.append(f"note: {_printable(note)}")
    return "\n".join(out)
