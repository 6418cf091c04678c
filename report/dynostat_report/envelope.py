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

import re
from datetime import datetime, timezone

# A time as Heroku writes it (RFC 3339, any number of fraction digits), or with a space
# instead of the T and the offset left out (UTC), as archives often write it.
_TIME = r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d):(\d\d(?:\.\d+)?)\s?(Z|UTC|[+-]\d\d:?\d\d)?"

# ``TIME [host] emitter[process]: message``. The optional host may not hold ``[``, so a
# message such as ``leaky_worker[8]: fork failed`` is never taken for the envelope.
_HEROKU_TEXT = re.compile(_TIME + r"\s+(?:[^\s\[]+\s+)?([\w.-]+)\[([^\]\s]+)\]:\s?(.*)", re.S)

# ``<PRI>1 TIME HOST APP-NAME PROCID MSGID message``, Logplex's RFC 5424 without structured
# data; a structured-data block from another sender is stepped over.
_RFC5424 = re.compile(r"<\d{1,3}>1 " + _TIME + r" \S+ (\S+) (\S+) \S+ ?(.*)", re.S)
_STRUCTURED_DATA = re.compile(r"(?:\[(?:[^\]\\]|\\.)*\])+ ?")

_TIME_ONLY = re.compile(_TIME + r"$")


# The UTC epoch of each minute seen, by its text and zone: a log holds few distinct minutes
# and many lines per minute, so each is computed once.
_minute_cache: dict[tuple[str, str | None], float | None] = {}


def _epoch(minute: str, second: str, zone: str | None) -> float | None:
    """Seconds since the epoch (UTC) of a time matched by ``_TIME`` (its three groups), or
    None when it is not a real time (month 13, hour 25)."""
    key = (minute, zone)
    try:
        base = _minute_cache[key]
    except KeyError:
        base = _minute_epoch(minute, zone)
        if len(_minute_cache) > 100_000:
            _minute_cache.clear()
        _minute_cache[key] = base
    if base is None:
        return None
    seconds = float(second)
    return base + seconds if seconds < 61 else None


def _minute_epoch(minute: str, zone: str | None) -> float | None:
    try:
        moment = datetime(
            int(minute[0:4]),
            int(minute[5:7]),
            int(minute[8:10]),
            int(minute[11:13]),
            int(minute[14:16]),
            tzinfo=timezone.utc,
        )
    except ValueError:  # February 30th, hour 25: not a time
        return None
    base = moment.timestamp()
    if zone and zone not in ("Z", "UTC"):
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        base += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return base


def parse_time(text: str) -> float | None:
    """An RFC 3339 time (or an archive's ``YYYY-MM-DD HH:MM:SS``) as UTC epoch seconds."""
    match = _TIME_ONLY.match(text.strip())
    return None if match is None else _epoch(*match.groups())


# What ``parse`` returns: (time as UTC epoch seconds, emitter, process, message). A plain
# tuple, not a class: it is made once for every line of a log.
Envelope = tuple


def parse(line: str) -> Envelope | None:
    """The envelope of one log line (without its newline), or None if it has none we know."""
    head = line[:1]
    if head.isdigit():
        # _heroku_text, unrolled for the common line: this runs for every line of a log.
        match = _HEROKU_TEXT.match(line)
        if match is not None:
            minute, second, zone, emitter, process, message = match.groups()
            base = _minute_cache.get((minute, zone))
            if base is not None:
                seconds = float(second)
                if seconds < 61:
                    return (base + seconds, emitter, process, message)
            return _heroku_text(line)
        return _tab_separated(line) if "\t" in line else None
    if head == "<":
        return _rfc5424(line)
    return None


def _heroku_text(line: str) -> Envelope | None:
    match = _HEROKU_TEXT.match(line)
    if match is None:
        return None
    minute, second, zone, emitter, process, message = match.groups()
    base = _minute_cache.get((minute, zone))
    if base is None:
        time = _epoch(minute, second, zone)
        return None if time is None else (time, emitter, process, message)
    seconds = float(second)
    return (base + seconds, emitter, process, message) if seconds < 61 else None


def _rfc5424(line: str) -> Envelope | None:
    match = _RFC5424.match(line)
    if match is None:
        return None
    minute, second, zone, emitter, process, message = match.groups()
    time = _epoch(minute, second, zone)
    if time is None:
        return None
    if message[:1] == "[":
        message = _STRUCTURED_DATA.sub("", message, count=1)
    return (time, emitter, process, message)


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
    return (time, emitter, process, "\t".join(columns[9:]))
