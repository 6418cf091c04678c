"""What the agent prints: a sample as four logfmt lines (or one JSON object), and event lines.

Every line starts with ``source=<process> dyno=<id>``. Metric names and units follow
Heroku's log-runtime-metrics (``sample#memory_total=211.52MB``) behind a configurable prefix,
so existing parsers understand them. A metric whose source could not be read is left out;
a line left with no metric at all is not printed.

Text from outside the agent (a comm, the dyno's name, a path in an error) is made valid
Unicode first: bytes that are not UTF-8 become U+FFFD, as any lossy UTF-8 decoder shows them,
and so does a lone surrogate (how Python carries such bytes in environment variables and
paths). Every line is therefore valid UTF-8, and the JSON format is strict JSON.

Culprit lists (``top#<kind>=pid/comm:value,...``) hold entries separated by commas. An
entry's comm is written as the inside of a JSON string whose own ``,`` and ``:`` are escaped
too (``\\u002c``, ``\\u003a``), so entries split on ``,``, each entry on its first ``/`` and
its last ``:``, and ``json.loads('"' + comm + '"')`` gives the comm back. The whole value is
then quoted like any logfmt value. ``comm`` is the one thing on the line a process chooses
itself: it can neither split the line nor forge a field.
"""

from __future__ import annotations

from dynostat import logfmt
from dynostat.logfmt import MAX_LINE_BYTES
from dynostat.sample import Culprit, Sample, Tasks

# typing and collections cost memory at run time; only type checkers read these.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Union

BYTES_PER_MB = 1024 * 1024
if TYPE_CHECKING:
    Number = Union[int, float]


class Quantity:
    """A number with its unit: ``211.52MB`` in logfmt, ``211.52`` in JSON."""

    __slots__ = ("unit", "value")

    def __init__(self, value: Number, unit: str) -> None:
        self.value = value
        self.unit = unit

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return (self.value, self.unit) == (other.value, other.unit)

    def __hash__(self) -> int:
        return hash((self.value, self.unit))

    def __repr__(self) -> str:
        return f"Quantity({self.value!r}, {self.unit!r})"

    def logfmt(self) -> str:
        if isinstance(self.value, float):
            return f"{self.value:.2f}{self.unit}"
        return f"{self.value}{self.unit}"

    def number(self) -> Number:
        if isinstance(self.value, float):
            # The same digits the logfmt line shows, so both formats agree to the last digit.
            return float(f"{self.value:.2f}")
        return self.value

    def __str__(self) -> str:
        return self.logfmt()


def megabytes(n_bytes: int) -> Quantity:
    """Bytes as log-runtime-metrics shows them: MB (2**20 bytes) with two decimals."""
    return Quantity(n_bytes / BYTES_PER_MB, "MB")


# U+FFFD, the replacement character, as UTF-8 bytes.
REPLACEMENT_UTF8 = "\ufffd".encode()


def plain_text(text: str) -> str:
    """Text that is valid Unicode: undecodable bytes and lone surrogates become U+FFFD.

    Python carries the bytes of a name that is not UTF-8 as lone surrogates (U+DC80 to
    U+DCFF, ``surrogateescape``); they are turned back into those bytes and decoded the way
    ``procfs.decode_comm`` decodes a comm, so a name reads the same whichever way it came in.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return text  # the common case: nothing to do
    data = bytearray()
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            data.append(code - 0xDC00)
        elif 0xD800 <= code <= 0xDFFF:
            data += REPLACEMENT_UTF8
        else:
            data += char.encode("utf-8")
    return data.decode("utf-8", "replace")


def metric_groups(sample: Sample) -> list[list[tuple[str, Quantity]]]:
    """The sample's metrics, one list per log line, each without its prefix.

    Lines are load, memory, then tasks with the agent's own cost. Fields that are None are
    left out here, which is the one place the "absent is not zero" rule is applied.
    """
    load: list[tuple[str, Quantity]] = []
    if sample.load is not None:
        load = [
            ("load_avg_1m", Quantity(float(sample.load.avg_1m), "")),
            ("load_avg_5m", Quantity(float(sample.load.avg_5m), "")),
            ("load_avg_15m", Quantity(float(sample.load.avg_15m), "")),
        ]

    memory: list[tuple[str, Quantity]] = []
    if sample.memory is not None:
        mem = sample.memory
        for name, n_bytes in (
            ("memory_total", mem.total),
            ("memory_rss", mem.rss),
            ("memory_cache", mem.cache),
            ("memory_swap", mem.swap),
        ):
            if n_bytes is not None:
                memory.append((name, megabytes(n_bytes)))
        for name, pages in (("memory_pgpgin", mem.pgpgin), ("memory_pgpgout", mem.pgpgout)):
            if pages is not None:
                memory.append((name, Quantity(pages, "pages")))
        if mem.quota is not None:
            memory.append(("memory_quota", megabytes(mem.quota)))

    tasks = _task_metrics(sample.tasks) if sample.tasks is not None else []
    if sample.agent_rss is not None:
        tasks.append(("agent_rss", megabytes(sample.agent_rss)))
    if sample.agent_cpu_ms is not None:
        tasks.append(("agent_cpu", Quantity(float(sample.agent_cpu_ms), "ms")))
    if sample.push_dropped is not None:
        tasks.append(("push_dropped", Quantity(sample.push_dropped, "")))

    return [group for group in (load, memory, tasks) if group]


def _task_metrics(counts: Tasks) -> list[tuple[str, Quantity]]:
    """The task counts that were read; under a /proc that shows nothing, only the cgroup's."""
    metrics = []
    for name, count in (
        ("tasks", counts.tasks),
        ("tasks_limit", counts.limit),
        ("processes", counts.processes),
        ("threads", counts.threads),
        ("zombies", counts.zombies),
    ):
        if count is not None:
            metrics.append((name, Quantity(count, "")))
    return metrics


# (group name, the JSON key of an entry's value, entries as (culprit, value as logfmt shows it))
CulpritGroup = tuple[str, str, list[tuple[Culprit, Quantity]]]


def culprit_groups(sample: Sample) -> list[CulpritGroup]:
    """The non-trivial culprit lists: zombie parents, multi-threaded processes, top rss."""
    groups: list[CulpritGroup] = []
    zombie_parents = [(c, Quantity(c.count, "")) for c in sample.zombie_parents if c.count > 0]
    if zombie_parents:
        groups.append(("zombie_parents", "zombies", zombie_parents))
    threads = [(c, Quantity(c.count, "")) for c in sample.top_threads if c.count > 1]
    if threads:
        groups.append(("threads", "threads", threads))
    rss = [(c, megabytes(c.count)) for c in sample.top_rss if c.count > 0]
    if rss:
        groups.append(("rss", "rss", rss))
    return groups


def culprit_comm(comm: str) -> str:
    """A comm as written inside a ``pid/comm:value`` entry (see the module docstring)."""
    return logfmt.escape(plain_text(comm), also=CULPRIT_SEPARATORS)


# What a top# value is split on: entries on ",", an entry's value off its comm on the last ":".
CULPRIT_SEPARATORS = ",:"


def _drop_one_entry(groups: list[CulpritGroup]) -> bool:
    """Shorten the longest culprit list by its last (smallest) entry; False when all empty."""
    longest = max(groups, key=lambda group: len(group[2]))
    if not longest[2]:
        return False
    longest[2].pop()
    return True


class Formatter:
    """Turns samples and events into lines for one agent (its source, dyno, format, prefix)."""

    def __init__(self, source: str, dyno: str, fmt: str = "logfmt", prefix: str = "dynostat."):
        self.source = plain_text(source)
        self.dyno = plain_text(dyno)
        self.fmt = fmt
        self.prefix = prefix
        self._head = logfmt.line({"source": self.source, "dyno": self.dyno})

    # -- samples ---------------------------------------------------------------------------

    def sample_lines(self, sample: Sample) -> list[str]:
        """The lines one sample prints: up to four logfmt lines, or one JSON object."""
        if self.fmt == "json":
            return [self._sample_json(sample)]
        lines = []
        for group in metric_groups(sample):
            metrics = " ".join(
                f"sample#{self.prefix}{name}={quantity.logfmt()}" for name, quantity in group
            )
            lines.append(f"{self._head} {metrics}")
        culprits = self._culprits_logfmt(culprit_groups(sample))
        if culprits:
            lines.append(culprits)
        return lines

    def _culprits_logfmt(self, groups: list[CulpritGroup]) -> str | None:
        while groups:
            parts = [
                logfmt.pair(
                    f"top#{name}",
                    ",".join(
                        f"{c.pid}/{culprit_comm(c.comm)}:{value.logfmt()}" for c, value in entries
                    ),
                )
                for name, _, entries in groups
                if entries
            ]
            if not parts:
                return None
            text = f"{self._head} {' '.join(parts)}"
            if len(text.encode("utf-8")) < MAX_LINE_BYTES or not _drop_one_entry(groups):
                return text
        return None

    def _sample_json(self, sample: Sample) -> str:
        values: dict[str, Number] = {}
        units: dict[str, str] = {}
        for group in metric_groups(sample):
            for name, quantity in group:
                values[self.prefix + name] = quantity.number()
                if quantity.unit:
                    units[self.prefix + name] = quantity.unit
        groups = culprit_groups(sample)
        while True:
            top = {
                name: [
                    {"pid": c.pid, "comm": plain_text(c.comm), key: value.number()}
                    for c, value in entries
                ]
                for name, key, entries in groups
                if entries
            }
            document: dict[str, object] = {
                "source": self.source,
                "dyno": self.dyno,
                "time": round(sample.wall_time, 3),
                "sample": values,
                "units": units,
            }
            if top:
                document["top"] = top
            text = _dumps(document)
            if len(text) < MAX_LINE_BYTES or not groups or not _drop_one_entry(groups):
                return text

    # -- events ----------------------------------------------------------------------------

    def event_line(self, fields: Mapping[str, object]) -> str:
        """A warning or error (``at=warn``/``at=error``, ``event=...``) as one line."""
        if self.fmt == "json":
            document: dict[str, object] = {"source": self.source, "dyno": self.dyno}
            for key, value in fields.items():
                document[key] = _json_value(value)
            return _dumps(document)
        parts = [self._head]
        for key, value in fields.items():
            if isinstance(value, Quantity):
                parts.append(f"{key}={value.logfmt()}")
            elif isinstance(value, str):
                parts.append(logfmt.pair(key, logfmt.clip(plain_text(value))))
            else:
                parts.append(logfmt.pair(key, plain_text(logfmt.render(value))))
        return " ".join(parts)


def _json_value(value: object) -> object:
    if isinstance(value, Quantity):
        return value.number()
    if isinstance(value, str):
        return logfmt.clip(plain_text(value))
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return plain_text(str(value))


def _dumps(document: Mapping[str, object]) -> str:
    # Imported here: only an agent configured for JSON pays for the json module.
    import json  # noqa: PLC0415

    return json.dumps(document, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
