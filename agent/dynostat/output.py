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
from dynostat.sample import Culprit, Sample, Tasks, Workers

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
        if mem.oom_kills is not None:
            memory.append(("memory_oom_kills", Quantity(mem.oom_kills, "")))

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
    """The non-trivial culprit lists: zombie parents, multi-threaded processes, top rss and
    top PSS."""
    groups: list[CulpritGroup] = []
    zombie_parents = [
        (parent, Quantity(parent.count, "")) for parent in sample.zombie_parents if parent.count > 0
    ]
    if zombie_parents:
        groups.append(("zombie_parents", "zombies", zombie_parents))
    threads = [
        (process, Quantity(process.count, ""))
        for process in sample.top_threads
        if process.count > 1
    ]
    if threads:
        groups.append(("threads", "threads", threads))
    rss = [(process, megabytes(process.count)) for process in sample.top_rss if process.count > 0]
    if rss:
        groups.append(("rss", "rss", rss))
    pss = [(process, megabytes(process.count)) for process in sample.top_pss if process.count > 0]
    if pss:
        groups.append(("pss", "pss", pss))
    return groups


def workers_fields(workers: Workers) -> dict[str, object]:
    """The largest worker group as fields, in the order the ``workers`` line prints them;
    figures that could not be read are left out."""
    fields: dict[str, object] = {
        "pid": workers.pid,
        "comm": workers.comm,
        "workers": workers.workers,
    }
    for name in ("worker_pss", "worker_uss", "parent_pss"):
        value = getattr(workers, name)
        if value is not None:
            fields[name] = megabytes(value)
    if workers.fits is not None:
        fields["fits"] = workers.fits
    return fields


def culprit_comm(comm: str) -> str:
    """A comm as written inside a ``pid/comm:value`` entry (see the module docstring)."""
    return logfmt.escape(plain_text(comm), also=CULPRIT_SEPARATORS)


# What a top# value is split on: entries on ",", an entry's value off its comm on the last ":".
CULPRIT_SEPARATORS = ",:"


def _fit(groups: list[CulpritGroup], sizes: list[list[int]], fixed: int, budget: int) -> None:
    """Drop entries until the line fits ``budget`` bytes: each time the last (smallest) entry
    of the longest list. ``sizes[i][j]`` is what entry j of group i adds to the line, and
    ``fixed`` what the line costs without any entry."""
    total = fixed + sum(sum(group_sizes) for group_sizes in sizes)
    while total > budget:
        index = max(range(len(groups)), key=lambda i: len(groups[i][2]))
        if not groups[index][2]:
            return
        groups[index][2].pop()
        total -= sizes[index].pop()


def _fitting(line: str) -> str | None:
    """The line when it fits in one atomic write with its newline (see logwriter), else None."""
    return line if len(line.encode("utf-8")) < MAX_LINE_BYTES else None


# The dyno's name and id start every line; names Heroku gives are far shorter than this, and
# cutting them keeps room on every line for what follows, whatever the environment holds.
MAX_NAME_CHARS = 64
# An id of printable ASCII may be longer (drop-in mode's heroku.<app id>.<dyno id> is 80
# characters): escaped, it costs at most two bytes a character, still less than 64 characters
# of anything else would, so every line keeps its room.
MAX_ASCII_ID_CHARS = 96
# An event line that would not fit is printed again with its text fields cut to this.
SHORT_TEXT_CHARS = 40


class Formatter:
    """Turns samples and events into lines for one agent (its source, dyno, format, prefix)."""

    def __init__(
        self, source: str, dyno: str, output_format: str = "logfmt", prefix: str = "dynostat."
    ):
        self.source = logfmt.clip(plain_text(source), MAX_NAME_CHARS)
        dyno = plain_text(dyno)
        plain = dyno.isascii() and dyno.isprintable()
        self.dyno = logfmt.clip(dyno, MAX_ASCII_ID_CHARS if plain else MAX_NAME_CHARS)
        self.output_format = output_format
        self.prefix = prefix
        self._head = logfmt.line({"source": self.source, "dyno": self.dyno})

    # -- samples ---------------------------------------------------------------------------

    def sample_lines(self, sample: Sample) -> list[str]:
        """The lines one sample prints: up to four logfmt lines, or one JSON object."""
        if self.output_format == "json":
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
        entries = [
            [f"{c.pid}/{culprit_comm(c.comm)}:{value.logfmt()}" for c, value in group[2]]
            for group in groups
        ]
        # What each entry adds to the line once its list is quoted (a comma and its escaped
        # bytes), and what each list costs without entries (" top#name=" and the quotes).
        sizes = [[len(logfmt.escape(entry).encode()) + 1 for entry in group] for group in entries]
        fixed = len(self._head.encode()) + sum(len(f' top#{name}=""') - 1 for name, _, _ in groups)
        _fit(groups, sizes, fixed, MAX_LINE_BYTES - 1)
        parts = [
            logfmt.pair(f"top#{name}", ",".join(rendered[: len(group_entries)]))
            for (name, _, group_entries), rendered in zip(groups, entries)
            if group_entries
        ]
        return _fitting(f"{self._head} {' '.join(parts)}") if parts else None

    def _sample_json(self, sample: Sample) -> str:
        values: dict[str, Number] = {}
        units: dict[str, str] = {}
        for group in metric_groups(sample):
            for name, quantity in group:
                values[self.prefix + name] = quantity.number()
                if quantity.unit:
                    units[self.prefix + name] = quantity.unit
        document: dict[str, object] = {
            "source": self.source,
            "dyno": self.dyno,
            "time": round(sample.wall_time, 3),
            "sample": values,
            "units": units,
        }
        if sample.workers is not None:
            document["workers"] = {
                key: _json_value(value, logfmt.MAX_TEXT_CHARS)
                for key, value in workers_fields(sample.workers).items()
            }
        groups = culprit_groups(sample)
        entries = [
            [{"pid": c.pid, "comm": plain_text(c.comm), key: value.number()} for c, value in group]
            for _, key, group in groups
        ]
        sizes = [[len(_dumps(entry)) + 1 for entry in group] for group in entries]
        fixed = (
            len(_dumps(document)) + len(',"top":{}') + sum(len(f'"{n}":[],') for n, _, _ in groups)
        )
        _fit(groups, sizes, fixed, MAX_LINE_BYTES - 1)
        top = {
            name: rendered[: len(group_entries)]
            for (name, _, group_entries), rendered in zip(groups, entries)
            if group_entries
        }
        if top:
            document["top"] = top
        text = _fitting(_dumps(document))
        # The culprit lists were cut to fit; what can still be too long is the worker group
        # beside dyno names and a prefix at their longest: it goes first, then the lists.
        for optional in ("workers", "top"):
            if text is not None:
                break
            document.pop(optional, None)
            text = _fitting(_dumps(document))
        return text if text is not None else _dumps(document)

    # -- events ----------------------------------------------------------------------------

    def event_line(self, fields: Mapping[str, object]) -> str:
        """A warning or error (``at=warn``/``at=error``, ``event=...``) as one line."""
        line = self._event_line(fields, logfmt.MAX_TEXT_CHARS)
        if len(line.encode("utf-8")) >= MAX_LINE_BYTES:
            # Many long text fields, each full of escapes: cut them shorter so the line still
            # goes out whole.
            line = self._event_line(fields, SHORT_TEXT_CHARS)
        if len(line.encode("utf-8")) >= MAX_LINE_BYTES:
            # Still too long: what happened, without the details.
            short = {key: fields[key] for key in ("at", "event") if key in fields}
            line = self._event_line({**short, "truncated": True}, SHORT_TEXT_CHARS)
        return line

    def _event_line(self, fields: Mapping[str, object], text_chars: int) -> str:
        if self.output_format == "json":
            document: dict[str, object] = {"source": self.source, "dyno": self.dyno}
            for key, value in fields.items():
                document[key] = _json_value(value, text_chars)
            return _dumps(document)
        parts = [self._head]
        for key, value in fields.items():
            if isinstance(value, Quantity):
                parts.append(f"{key}={value.logfmt()}")
            elif isinstance(value, str):
                parts.append(logfmt.pair(key, logfmt.clip(plain_text(value), text_chars)))
            else:
                parts.append(logfmt.pair(key, plain_text(logfmt.render(value))))
        return " ".join(parts)


def _json_value(value: object, text_chars: int) -> object:
    if isinstance(value, Quantity):
        return value.number()
    if isinstance(value, str):
        return logfmt.clip(plain_text(value), text_chars)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return plain_text(str(value))


def _dumps(document: Mapping[str, object]) -> str:
    # Imported here: only an agent configured for JSON pays for the json module.
    import json  # noqa: PLC0415

    return json.dumps(document, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
