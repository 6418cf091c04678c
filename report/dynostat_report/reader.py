"""From log lines to dynos: what each message says, filed under the dyno it is about.

Messages understood:

- dynostat's lines, logfmt (``source=web.1 dyno=... sample#dynostat.tasks=87 ...``,
  ``top#zombie_parents=...``, ``at=warn event=... pid= comm=``) and JSON, with any metric
  prefix. Every ``sample#<prefix><name>=<value><unit>`` is kept, so metrics this reader has
  never heard of still reach the summary; every ``at=<level> event=<name>`` is a marker.
- Heroku's log-runtime-metrics (``heroku[web.1]: source=web.1 sample#memory_total=...``),
  kept apart from dynostat's as ``heroku:<name>``.
- Router lines (``heroku[router]: at=info ... dyno=web.1 service=23ms status=200``) and
  router errors (``code=H12``).
- Heroku's dyno messages: ``Error R14 (...)``, ``Process running mem=...``, ``Process exited
  with status N``, ``State changed from up to crashed``, restarts, SIGTERM and SIGKILL.
- Releases, deploys, config changes and scaling (``app[api]: Release v42 ...``), which
  concern the whole app.
- App lines that say a process or thread could not be created (EAGAIN): the task limit bit.

Everything else with a readable envelope is counted as another line; a line with no
envelope (junk, cut, binary) is counted as skipped with its reason. Nothing here raises on
bad input.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections import Counter

from dynostat_report import envelope as envelopes
from dynostat_report import inputs
from dynostat_report.logfmt import (
    TO_MB,
    UNIT_LETTERS,
    number,
    pairs,
    raw_pairs,
    to_megabytes,
    unquote,
)
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
    Event,
    Series,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# dynostat's metric names without a prefix (and log-runtime-metrics' names, which are the
# same), longest first so ``tasks_limit`` is tried before ``tasks``.
KNOWN_METRICS = tuple(
    sorted(
        (
            "load_avg_1m",
            "load_avg_5m",
            "load_avg_15m",
            "memory_total",
            "memory_rss",
            "memory_cache",
            "memory_swap",
            "memory_pgpgin",
            "memory_pgpgout",
            "memory_quota",
            "tasks",
            "tasks_limit",
            "processes",
            "threads",
            "zombies",
            "agent_rss",
            "agent_cpu",
            "push_dropped",
        ),
        key=len,
        reverse=True,
    )
)
DEFAULT_PREFIX = "dynostat."

_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# Raw control characters (tab aside) or undecodable bytes in a line without an envelope: a
# binary file, not text that lost its envelope.
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
# A classic (RFC 3164) syslog time, as a syslog server's files keep by default: no year and
# no zone, so the line cannot be placed on the time axis.
_CLASSIC_SYSLOG = re.compile(
    r"(?:<\d{1,3}>)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d "
)

_PLATFORM_ERROR = re.compile(r"Error ([A-Z]\d{2})\b")
_STATE = re.compile(r"State changed from (\w+) to (\w+)")
_EXIT = re.compile(r"Process exited with status (-?\d+)")
_SIGNAL = re.compile(r"Stopping (?:all processes|process) with (SIG[A-Z]+)")
_RUNNING_MEM = re.compile(r"Process running mem=")
_RESTARTING = re.compile(r"(Restarting|Cycling)\b")
_STARTING = re.compile(r"Starting process with command")
_RELEASE = re.compile(
    r"(Release (v\d+)|Rollback to (v\d+)|Deploy\b|Scaled to\b|(?:Set|Remove) .* config vars)"
)
_ROUTER_CODE = re.compile(r"at=\S+ code=(\S+)")
_EAGAIN = re.compile(r"EAGAIN|Resource temporarily unavailable|errno:? ?11\b")
_FORK_WORDS = re.compile(r"(?i)fork|thread|spawn|clone|pthread")

# JSON sample times outside these years are not times (a counter, milliseconds).
_MIN_TIME = 946684800.0  # 2000-01-01
_MAX_TIME = 4102444800.0  # 2100-01-01

MAX_EVENT_LINE_CHARS = 2000
# Kinds of metric line remembered for the fast path; a log has a handful (load, memory,
# tasks, Heroku's own), so this bound only matters for hostile input.
MAX_SHAPES = 256
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class _Shape:
    """A kind of metric line: the expression that reads it, the key of the series it fills,
    and each value's factor to MB (1 for what is not a size)."""

    __slots__ = ("factors", "key", "pattern", "units")

    def __init__(
        self, pattern: re.Pattern[str], key: tuple, factors: list[float], units: list[str]
    ) -> None:
        self.pattern = pattern
        self.key = key
        self.factors = factors
        self.units = units


class _Batch:
    """Lines of one shape from one dyno, kept as matched text until there are SIZE of them,
    then converted column by column (``map(float, ...)`` runs in C, a Python loop over
    every value would not)."""

    SIZE = 256

    __slots__ = ("rows", "shape", "targets", "times")

    def __init__(self, targets: list[Series], shape: _Shape) -> None:
        self.targets = targets
        self.shape = shape
        self.times = array("d")
        self.rows: list[tuple[str, ...]] = []

    def flush(self) -> None:
        if not self.rows:
            return
        for series, unit in zip(self.targets, self.shape.units):
            if unit and not series.unit:
                series.unit = unit
        columns = list(zip(*self.rows))[2:]  # the source and dyno id come first
        for series, column, factor in zip(self.targets, columns, self.shape.factors):
            values = array("d", map(float, column))
            if factor != 1.0:
                values = array("d", (value * factor for value in values))
            series.times.extend(self.times)
            series.values.extend(values)
        self.times = array("d")
        self.rows = []


class Release:
    """An app-wide moment: a release, deploy, rollback, config change or scaling."""

    __slots__ = ("label", "line", "time")

    def __init__(self, time: float, label: str, line: str) -> None:
        self.time = time
        self.label = label
        self.line = line


class Reader:
    """Reads lines from any number of inputs into per-dyno series and events."""

    def __init__(self) -> None:
        self.dynos: dict[str, Dyno] = {}
        # Router errors that name no dyno (H10 "App crashed" often does not).
        self.unattributed = Dyno("")
        self.releases: list[Release] = []
        self.lines = 0
        self.other_lines = 0
        self.duplicate_lines = 0
        self.skipped: Counter[str] = Counter()
        self.first = math.inf
        self.last = -math.inf
        self.notes: list[str] = []
        self._seen: set[int] = set()
        self._prefixes: set[str] = set()
        self._line_names: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._last_time: dict[str, float] = {}
        # Known metric line shapes by their first metric name: for app lines, for Heroku's.
        self._shapes: dict[bool, dict[str, _Shape]] = {False: {}, True: {}}

    # -- inputs ----------------------------------------------------------------------------

    def read_source(self, source: inputs.Source) -> None:
        """Reads every line of one input; a cut or corrupt gzip ends it with a note."""
        feed = self.feed
        feed_bytes = self.feed_bytes
        frames = inputs.frames
        lines = 0
        for raw in inputs.raw_lines(source):
            if raw[:1].isdigit() and b" <" in raw[:8]:
                for frame in frames(raw):
                    feed_bytes(frame)
            elif raw and not raw.isspace():
                # feed_bytes, unrolled: this loop runs once for every line of the input.
                lines += 1
                line = raw.decode("utf-8", "replace")
                feed(_ANSI.sub("", line) if "\x1b" in line else line)
        self.lines += lines
        if source.overlong_lines:
            self.lines += source.overlong_lines
            self.skipped["longer than 64 KiB"] += source.overlong_lines
        if source.truncated:
            self.notes.append(f"{source.name}: input ended early ({source.truncated})")

    def read_lines(self, lines: Iterable[bytes | str]) -> None:
        """Reads lines given directly (tests, other tools): bytes or text, without newlines."""
        for line in lines:
            raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
            self.feed_bytes(raw.rstrip(b"\r\n"))

    def feed_bytes(self, raw: bytes) -> None:
        """One line as bytes (no newline)."""
        if not raw or raw.isspace():
            return
        self.lines += 1
        line = raw.decode("utf-8", "replace")
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        self.feed(line)

    # -- one line --------------------------------------------------------------------------

    def feed(self, line: str) -> None:
        """One decoded line, colours already removed."""
        found = envelopes.parse(line)
        if found is None:
            self._no_envelope(line)
            return
        time, emitter, process, message = found
        key = hash(found)
        if key in self._seen:
            self.duplicate_lines += 1
            return
        self._seen.add(key)
        if emitter == "heroku":
            self._heroku(time, process, message, line)
        elif message[:7] == "source=":
            if not self._known_shape(time, message, False):
                self._dynostat(time, process, message, line, heroku=False)
        elif message[:1] == "{":
            self._json(time, process, message, line)
        elif process == "api":
            self._release(time, message, line)
        elif _EAGAIN.search(message) is not None and _FORK_WORDS.search(message) is not None:
            dyno = self._dyno(process)
            dyno.seen(time)
            dyno.events.append(Event(time, FORK_FAILURE, "EAGAIN", _clip(line)))
        else:
            self._other(time)

    def _other(self, time: float) -> None:
        """A line with a time that says nothing the report shows: it still spans the log."""
        self.other_lines += 1
        self.first = min(self.first, time)
        self.last = max(self.last, time)

    def _no_envelope(self, line: str) -> None:
        stripped = line.strip()
        if _BINARY.search(stripped) is not None:
            self.skipped["binary"] += 1
        elif stripped[:1] == "{":
            self._json(None, None, stripped, stripped)
        elif stripped[:7] == "source=":
            # The agent's own output, captured without the log's time: nothing to place it at.
            self.skipped["dynostat line without a time"] += 1
        elif _CLASSIC_SYSLOG.match(stripped) is not None:
            self.skipped["classic syslog time (no year)"] += 1
        else:
            self.skipped["not a log line"] += 1

    def _dyno(self, name: str) -> Dyno:
        dyno = self.dynos.get(name)
        if dyno is None:
            dyno = self.dynos[name] = Dyno(name)
        return dyno

    # -- dynostat --------------------------------------------------------------------------

    def _dynostat(self, time: float, process: str, message: str, line: str, heroku: bool) -> None:
        names, values, tops, other = _words(message)
        name = other.get("source") or process
        dyno = self.dynos.get(name) or self._dyno(name)
        dyno.seen(time)
        dyno_id = other.get("dyno")
        if dyno_id and (not dyno.dyno_ids or dyno.dyno_ids[-1] != dyno_id):
            dyno.add_dyno_id(dyno_id)
        if names:
            self._samples(dyno, time, names, values, heroku)
            if not tops and len(other) == 2 and message.startswith("source="):
                self._learn_shape(message, names, values, heroku)
        for kind, value in tops:
            dyno.tops.append((time, kind, value))
        level = other.get("at")
        event = other.get("event")
        if level and event:
            pid = other.get("pid")
            pid_number = int(pid) if pid is not None and pid.isdigit() else None
            dyno.events.append(
                _agent_event(time, level, event, line, pid=pid_number, comm=other.get("comm"))
            )
        elif not names and not tops:
            self.other_lines += 1

    def _known_shape(self, time: float, message: str, heroku: bool) -> bool:
        """Reads a metric line of a shape seen before with one regular expression: the hot
        path, as nearly every line of a log is one of a few shapes repeated each interval.
        Its numbers are kept as text and converted a few thousand at a time (``_Batch``).
        False when the line is of no known shape (it is then read word by word)."""
        start = message.find(" sample#")
        if start < 0:
            return False
        shape = self._shapes[heroku].get(message[start + 8 : message.find("=", start)])
        if shape is None:
            return False
        match = shape.pattern.fullmatch(message)
        if match is None:
            return False
        groups = match.groups()
        source = groups[0]
        dyno = self.dynos.get(source) or self._dyno(source)
        if not dyno.dyno_ids or dyno.dyno_ids[-1] != groups[1]:
            dyno.add_dyno_id(groups[1])
        batch = dyno.batches.get(shape)  # by identity: hashing the names would cost more
        if batch is None:
            batch = dyno.batches[shape] = _Batch(
                dyno.line_series.get(shape.key) or self._targets(dyno, shape.key), shape
            )
        batch.times.append(time)
        batch.rows.append(groups)
        if len(batch.rows) >= _Batch.SIZE:
            batch.flush()
        return True

    def _learn_shape(self, message: str, names: list[str], values: list[str], heroku: bool) -> None:
        """Remembers the shape of a plain metric line (``source= dyno= sample#...`` with
        numbers) as a regular expression that reads the next one like it at once."""
        shapes = self._shapes[heroku]
        if len(shapes) >= MAX_SHAPES:
            return
        parts = [r"source=([^\s\"=]+) dyno=([^\s\"=]+)"]
        factors = []
        units = []
        for name, value in zip(names, values):
            digits = value.rstrip(UNIT_LETTERS)
            if not _PLAIN_NUMBER.fullmatch(digits):
                return
            unit = value[len(digits) :]
            factors.append(TO_MB.get(unit, 1.0))
            units.append("MB" if unit in TO_MB else unit)
            parts.append(f"{re.escape(name)}=({_PLAIN_NUMBER.pattern}){re.escape(unit)}")
        if not message.startswith("source=") or " dyno=" not in message:
            return
        first = names[0][7:]
        if first not in shapes:
            shapes[first] = _Shape(re.compile(" ".join(parts)), (heroku, *names), factors, units)

    def _targets(self, dyno: Dyno, key: tuple) -> list[Series]:
        """The series a kind of metric line fills, by the line's metric names."""
        heroku, *names = key
        bare = tuple(name[7:] for name in names)
        if heroku:
            targets = [dyno.series_for("heroku:" + base) for base in bare]
        else:
            targets = [dyno.series_for(base) for base in self._base_names(bare)]
        dyno.line_series[key] = targets
        return targets

    def _samples(
        self, dyno: Dyno, time: float, names: list[str], values: list[str], heroku: bool
    ) -> None:
        """Appends a line's metrics to their series."""
        key = (heroku, *names)
        targets = dyno.line_series.get(key) or self._targets(dyno, key)
        for series, value in zip(targets, values):
            digits = value.rstrip(UNIT_LETTERS)
            try:
                amount = float(digits)
            except ValueError:
                continue
            if len(digits) != len(value):
                unit = value[len(digits) :]
                if unit != "MB":
                    factor = TO_MB.get(unit)
                    if factor is not None:
                        amount *= factor
                        unit = "MB"
                if not series.unit:
                    series.unit = unit
            series.times.append(time)
            series.values.append(amount)

    def _base_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Metric names without their prefix, whatever ``DYNOSTAT_METRIC_PREFIX`` was.

        The prefix is the one most names of the line agree on when it ends in a known name
        (``dynostat.tasks``, ``myapp_tasks``), so a new metric on the same line
        (``dynostat.memory_oom_kills``) loses the same prefix. A line with only new metrics
        loses the longest prefix seen before, or ``dynostat.``.
        """
        bases = self._line_names.get(names)
        if bases is not None:
            return bases
        candidates: Counter[str] = Counter()
        for name in names:
            for known in KNOWN_METRICS:
                if name.endswith(known):
                    candidates[name[: len(name) - len(known)]] += 1
                    break
        if candidates:
            prefix = min(candidates, key=lambda p: (-candidates[p], len(p)))
            self._prefixes.add(prefix)
            bases = tuple(
                name[len(prefix) :] if name.startswith(prefix) else self._strip_learned(name)
                for name in names
            )
        else:
            bases = tuple(self._strip_learned(name) for name in names)
        if len(self._line_names) < 10_000:
            self._line_names[names] = bases
        return bases

    def _strip_learned(self, name: str) -> str:
        for prefix in sorted(self._prefixes | {DEFAULT_PREFIX}, key=len, reverse=True):
            if prefix and name.startswith(prefix) and len(name) > len(prefix):
                return name[len(prefix) :]
        return name

    def _json(self, time: float | None, process: str | None, text: str, line: str) -> None:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            self._json_failed(time)
            return
        if not isinstance(document, dict) or not isinstance(document.get("source"), str):
            self._json_failed(time)
            return
        source = document["source"] or process or ""
        time = self._json_time(document, time, bare=process is None, text=text)
        if time is None:
            return
        self._last_time[source] = time
        dyno = self._dyno(source)
        dyno.seen(time)
        dyno_id = document.get("dyno")
        if isinstance(dyno_id, str):
            dyno.add_dyno_id(dyno_id)
        found = self._json_samples(dyno, time, document)
        top = document.get("top")
        if isinstance(top, dict):
            for kind, entries in top.items():
                text_value = _json_top(entries)
                if text_value:
                    dyno.tops.append((time, str(kind), text_value))
                    found = True
        level = document.get("at")
        event = document.get("event")
        if isinstance(level, str) and isinstance(event, str) and level and event:
            pid = document.get("pid")
            comm = document.get("comm")
            dyno.events.append(
                _agent_event(
                    time,
                    level,
                    event,
                    line,
                    pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                    comm=comm if isinstance(comm, str) else None,
                )
            )
            found = True
        if not found:
            self.other_lines += 1

    def _json_time(
        self, document: dict, envelope_time: float | None, *, bare: bool, text: str
    ) -> float | None:
        """The line's time: its own ``time``, else the envelope's, else (a bare event) the
        time of the sample its dyno printed just before; None (counted) when there is none.
        """
        own_time = document.get("time")
        if _is_time(own_time):
            time = float(own_time)
            if bare:
                # A bare line has no envelope to tell repeats apart; its own time does.
                key = hash((time, text))
                if key in self._seen:
                    self.duplicate_lines += 1
                    return None
                self._seen.add(key)
            return time
        if envelope_time is not None:
            return envelope_time
        # dynostat prints an event right after the sample of the same tick.
        time = self._last_time.get(document["source"])
        if time is None:
            self.skipped["dynostat line without a time"] += 1
        return time

    def _json_samples(self, dyno: Dyno, time: float, document: dict) -> bool:
        sample = document.get("sample")
        if not isinstance(sample, dict):
            return False
        units = document.get("units")
        units = units if isinstance(units, dict) else {}
        names = tuple(name for name in sample if isinstance(name, str))
        found = False
        for name, base in zip(names, self._base_names(names)):
            value = sample[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                continue
            unit = units.get(name, "")
            amount, unit = _in_megabytes(float(value), unit if isinstance(unit, str) else "")
            dyno.add_sample(base, time, amount, unit)
            found = True
        return found

    def _json_failed(self, time: float | None) -> None:
        if time is None:
            self.skipped["not a log line"] += 1
        else:
            # A readable envelope around JSON that is not dynostat's: an app's own JSON log.
            self._other(time)

    # -- Heroku ----------------------------------------------------------------------------

    def _heroku(self, time: float, process: str, message: str, line: str) -> None:
        if process == "router":
            self._router(time, message, line)
            return
        if message[:7] == "source=":
            if not self._known_shape(time, message, True):
                self._dynostat(time, process, message, line, heroku=True)
            return
        event = _platform_event(time, message, line)
        if event is None:
            self._other(time)
            return
        dyno = self._dyno(process)
        dyno.seen(time)
        dyno.events.append(event)

    def _router(self, time: float, message: str, line: str) -> None:
        # The router writes what a client controls (path, fwd, host) before `dyno=` and only
        # its own numbers after it, so the last ` dyno=` is the real one and what follows
        # needs no quote handling. A line of another shape is read word by word.
        at = message.rfind(" dyno=")
        tail = message[at + 1 :]
        if at < 0 or '"' in tail:
            fields = raw_pairs(message)
        else:
            fields = dict(word.partition("=")[::2] for word in tail.split())
            code = _ROUTER_CODE.match(message)
            if code is not None:
                fields["code"] = code.group(1)
        name = unquote(fields.get("dyno", ""))
        code = unquote(fields.get("code", ""))
        service = number(fields.get("service", ""))
        target = self._dyno(name) if name else self.unattributed
        target.seen(time)
        if code:
            target.events.append(Event(time, ROUTER_ERROR, code, _clip(line)))
        if name:
            target.add_request(time, service[0] if service is not None else None)

    def _release(self, time: float, message: str, line: str) -> None:
        match = _RELEASE.match(message)
        if match is None:
            self._other(time)
            return
        if match.group(2) or match.group(3):
            label = match.group(2) or match.group(3)
        elif message.startswith("Deploy"):
            label = "deploy"
        elif message.startswith("Scaled"):
            label = "scale"
        else:
            label = "config"
        self.releases.append(Release(time, label, _clip(line)))

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Sorts every dyno's data by time; call once after the last input."""
        for dyno in self.dynos.values():
            for batch in dyno.batches.values():
                batch.flush()
            dyno.finish()
        self.unattributed.finish()
        self.releases.sort(key=lambda release: release.time)
        for dyno in (*self.dynos.values(), self.unattributed):
            self.first = min(self.first, dyno.first)
            self.last = max(self.last, dyno.last)
        if self.releases:
            self.first = min(self.first, self.releases[0].time)
            self.last = max(self.last, self.releases[-1].time)
        self._seen = set()


def _words(message: str) -> tuple[list[str], list[str], list[tuple[str, str]], dict[str, str]]:
    """A dynostat line's words: metric names (with their ``sample#``) and values, ``top#``
    lists as (kind, value), and every other field."""
    names: list[str] = []
    values: list[str] = []
    tops: list[tuple[str, str]] = []
    other: dict[str, str] = {}
    if '"' in message:
        found = pairs(message)
    else:
        # No quoted value: plain splitting is the whole grammar.
        found = [
            (key, value)
            for key, equals, value in (word.partition("=") for word in message.split())
            if equals
        ]
    for key, value in found:
        if key[:7] == "sample#":
            names.append(key)
            values.append(value)
        elif key[:4] == "top#":
            tops.append((key[4:], value))
        else:
            other[key] = value
    return names, values, tops, other


def _agent_event(
    time: float, level: str, event: str, line: str, *, pid: int | None, comm: str | None
) -> Event:
    kind = WARN if level == "warn" else AGENT_ERROR if level == "error" else INFO
    return Event(time, kind, event, _clip(line), pid=pid, comm=comm)


def _in_megabytes(amount: float, unit: str) -> tuple[float, str]:
    """Sizes in MB whatever unit they came in; other quantities as they are."""
    if unit and unit != "MB":
        megabytes = to_megabytes(amount, unit)
        if megabytes is not None:
            return megabytes, "MB"
    return amount, unit


def _state_event(match: re.Match[str]) -> tuple[str, str]:
    before, after = match.groups()
    if after == "crashed":
        return CRASH, "crashed"
    if after == "starting" and before != "down":
        return RESTART, f"{before} to starting"
    return LIFECYCLE, f"{before} to {after}"


# Heroku's lines about a dyno, in the order they are tried: the pattern, and how a match
# becomes (event kind, label).
_PLATFORM_LINES = (
    (_PLATFORM_ERROR, lambda match: (PLATFORM_ERROR, match.group(1))),
    (_STATE, _state_event),
    (_EXIT, lambda match: (LIFECYCLE, f"exit {match.group(1)}")),
    (_SIGNAL, lambda match: (LIFECYCLE, match.group(1))),
    (_RUNNING_MEM, lambda _: (LIFECYCLE, "mem")),
    (_RESTARTING, lambda match: (LIFECYCLE, match.group(1).lower())),
    (_STARTING, lambda _: (LIFECYCLE, "start")),
)


def _platform_event(time: float, message: str, line: str) -> Event | None:
    """What one of Heroku's own lines about a dyno means, or None if it is not about state."""
    for pattern, meaning in _PLATFORM_LINES:
        match = pattern.match(message)
        if match is not None:
            kind, label = meaning(match)
            return Event(time, kind, label, _clip(line))
    return None


def _json_top(entries: object) -> str:
    """A JSON ``top`` list as the logfmt ``pid/comm:value`` text, so both read alike."""
    if not isinstance(entries, list):
        return ""
    parts = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        pid = entry.get("pid")
        comm = entry.get("comm")
        amounts = [
            value
            for key, value in entry.items()
            if key not in ("pid", "comm")
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ]
        if not isinstance(pid, int) or not isinstance(comm, str) or not amounts:
            continue
        escaped = comm.replace("\\", "\\\\").replace(",", "\\u002c").replace(":", "\\u003a")
        parts.append(f"{pid}/{escaped}:{amounts[0]}")
    return ",".join(parts)


def _is_time(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and _MIN_TIME <= value <= _MAX_TIME
    )


def _clip(line: str) -> str:
    if len(line) <= MAX_EVENT_LINE_CHARS:
        return line
    return line[: MAX_EVENT_LINE_CHARS - 1] + "…"
