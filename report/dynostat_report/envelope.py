"""The envelope around a log message: when it was logged, by whom, and the message itself.

Heroku delivers the same message in several wrappings, all understood here:

- ``heroku logs`` text: ``2026-11-27T05:27:22.035388+00:00 app[web.1]: message`` (a syslog
  server writing RFC 3339 times may put a host name before ``app[web.1]:``; it is ignored);
- Logplex frames, as HTTPS and syslog drains send them (RFC 5424, possibly octet-counted,
  which ``inputs`` has already split off): ``<190>1 2026-... host app web.1 - message``;
- tab-separated archives whose second column is the time and whose last two are the program
  (``app/web.1``) and the message, as Papertrail exports them.

The emitter is ``app`` for what the app (and dynostat) printed and ``heroku`` for what the
platform printed: router lines, runtime metrics, errors, state changes.
"""

from __future__ import annotations

import calendar
import re

# A time as Heroku writes it (RFC 3339, any number of fraction digits), or with a space
# instead of the T and the offset left out (UTC), as archives often write it.
_TIME = r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d(?:\.\d+)?)\s?(Z|UTC|[+-]\d\d:?\d\d)?"

# ``TIME [host] emitter[process]: message``. The optional host may not hold ``[``, so a
# message such as ``leaky_worker[8]: fork failed`` is never taken for the envelope.
_HEROKU_TEXT = re.compile(_TIME + r"\s+(?:[^\s\[]+\s+)?([\w.-]+)\[([^\]\s]+)\]:\s?(.*)", re.S)

# ``<PRI>1 TIME HOST APP-NAME PROCID MSGID message``, Logplex's RFC 5424 without structured
# data; a structured-data block from another sender is stepped over.
_RFC5424 = re.compile(r"<\d{1,3}>1 " + _TIME + r" \S+ (\S+) (\S+) \S+ ?(.*)", re.S)
_STRUCTURED_DATA = re.compile(r"(?:\[(?:[^\]\\]|\\.)*\])+ ?")

_TIME_ONLY = re.compile(_TIME + r"$")

# The UTC epoch of each minute seen, keyed by its text: a log holds few distinct minutes and
# many lines per minute, so each is computed once.
_minute_cache: dict[tuple, float] = {}


def _epoch(parts: tuple[str | None, ...]) -> float | None:
    """Seconds since the epoch (UTC) of a parsed time (the seven groups of ``_TIME``), or
    None when it is not a real time."""
    year, month, day, hour, minute, second, offset = parts
    zone = offset or "Z"
    key = (year, month, day, hour, minute, zone)
    base = _minute_cache.get(key)
    if base is None:
        base = _minute_epoch(key)
        if base is None:
            return None
        if len(_minute_cache) > 100_000:
            _minute_cache.clear()
        _minute_cache[key] = base
    seconds = float(second or 0)
    if seconds >= 61:
        return None
    return base + seconds


def _minute_epoch(key: tuple) -> float | None:
    year, month, day, hour, minute, zone = (int(v) if v.isdigit() else v for v in key)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        return None
    try:
        base = float(calendar.timegm((year, month, day, hour, minute, 0, 0, 0, 0)))
    except (ValueError, OverflowError):
        return None
    if zone not in ("Z", "UTC"):
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        base += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return base


def parse_time(text: str) -> float | None:
    """An RFC 3339 time (or an archive's ``YYYY-MM-DD HH:MM:SS``) as UTC epoch seconds."""
    match = _TIME_ONLY.match(text.strip())
    return None if match is None else _epoch(match.groups())


class Envelope:
    """A message with its time (UTC epoch seconds), emitter (``app``/``heroku``) and process."""

    __slots__ = ("emitter", "message", "process", "time")

    def __init__(self, time: float, emitter: str, process: str, message: str) -> None:
        self.time = time
        self.emitter = emitter
        self.process = process
        self.message = message

    def __repr__(self) -> str:
        return f"Envelope({self.time!r}, {self.emitter!r}, {self.process!r}, {self.message!r})"


def parse(line: str) -> Envelope | None:
    """The envelope of one log line (without its newline), or None if it has none we know."""
    head = line[:1]
    if head.isdigit():
        found = _heroku_text(line)
        if found is None and "\t" in line:
            found = _tab_separated(line)
        return found
    if head == "<":
        return _rfc5424(line)
    return None


def _heroku_text(line: str) -> Envelope | None:
    match = _HEROKU_TEXT.match(line)
    if match is None:
        return None
    groups = match.groups()
    time = _epoch(groups[:7])
    return None if time is None else Envelope(time, groups[7], groups[8], groups[9])


def _rfc5424(line: str) -> Envelope | None:
    match = _RFC5424.match(line)
    if match is None:
        return None
    groups = match.groups()
    time = _epoch(groups[:7])
    if time is None:
        return None
    message = groups[9]
    if message[:1] == "[":
        message = _STRUCTURED_DATA.sub("", message, count=1)
    return Envelope(time, groups[7], groups[8], message)


def _tab_separated(line: str) -> Envelope | None:
    """``id, generated_at, received_at, source_id, source_name, source_ip, facility,
    severity, program, message``: the columns of a Papertrail archive."""
    columns = line.split("\t")
    if len(columns) < 10:
        return None
    time = parse_time(columns[1])
    if time is None:
        return None
    emitter, slash, process = columns[8].partition("/")
    if not slash or not process:
        return None
    return Envelope(time, emitter, process, "\t".join(columns[9:]))
