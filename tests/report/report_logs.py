"""Logs the report tests write themselves, in every format the report reads, with the answers.

An ``Incident`` is a list of log records (time, emitter, process, message) and, tallied
while they were made, what a correct summary must say about them: the highest task count,
every R14 and H12, every crash. Formatters turn the same records into ``heroku logs``
text, octet-counted Logplex drain frames, syslog lines, a Papertrail-style archive and
dynostat's JSON lines.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from support import readme_decoder

START = datetime(2026, 11, 27, 4, 0, 0, tzinfo=timezone.utc).timestamp()
INTERVAL = 20.0


@dataclass
class Record:
    time: float
    emitter: str  # "app" or "heroku"
    process: str  # "web.1", "router", "api"
    message: str


@dataclass
class Expected:
    """What the summary must say about one dyno."""

    peak_tasks: int | None = None
    tasks_limit: int | None = None
    peak_zombies: int | None = None
    peak_memory_mb: float | None = None
    memory_quota_mb: float | None = None
    errors: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    crashes: int = 0
    restarts: int = 0
    fork_failures: int = 0
    culprits: set = field(default_factory=set)  # (pid, comm, event)
    first_warning: float | None = None
    first_dyno_failure: float | None = None
    first_request_failure: float | None = None
    requests: int = 0
    service_ms: list = field(default_factory=list)
    samples: int = 0

    def peak(self, name: str, value: float) -> None:
        current = getattr(self, name)
        if current is None or value > current:
            setattr(self, name, value)

    def warned(self, time: float, event: str, pid: int, comm: str) -> None:
        self.warnings[event] += 1
        self.culprits.add((pid, comm, event))
        if self.first_warning is None:
            self.first_warning = time

    def failed(self, time: float, request: bool = False) -> None:
        """A failure: the dyno's own (crash, R14, EAGAIN), or a failed request (H12), which
        counts as the first failure only for a dyno that never failed itself."""
        if request:
            if self.first_request_failure is None:
                self.first_request_failure = time
        elif self.first_dyno_failure is None:
            self.first_dyno_failure = time

    @property
    def first_failure(self) -> float | None:
        if self.first_dyno_failure is not None:
            return self.first_dyno_failure
        return self.first_request_failure


@dataclass
class Incident:
    records: list[Record] = field(default_factory=list)
    expected: dict[str, Expected] = field(default_factory=dict)
    unattributed: Counter = field(default_factory=Counter)

    def add(self, time: float, emitter: str, process: str, message: str) -> None:
        self.records.append(Record(time, emitter, process, message))

    def dyno(self, name: str) -> Expected:
        return self.expected.setdefault(name, Expected())

    @property
    def first(self) -> float:
        return min(record.time for record in self.records)

    @property
    def last(self) -> float:
        return max(record.time for record in self.records)


def iso(time: float, digits: int = 6) -> str:
    moment = datetime.fromtimestamp(time, timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        fraction = f"{time - math.floor(time):.{digits}f}"[1:]
        text += fraction
    return text + "+00:00"


# -- the agent's lines --------------------------------------------------------------------


def metric_lines(source: str, dyno_id: str, values: dict, prefix: str = "dynostat.") -> list:
    """dynostat's three metric lines for one tick, as the agent prints them."""

    def fmt(name: str, value: float) -> str:
        unit = ""
        if name.startswith("memory_") and name not in ("memory_pgpgin", "memory_pgpgout"):
            return f"sample#{prefix}{name}={value:.2f}MB"
        if name in ("memory_pgpgin", "memory_pgpgout"):
            unit = "pages"
        if name.startswith("load_avg"):
            return f"sample#{prefix}{name}={value:.2f}"
        return f"sample#{prefix}{name}={value}{unit}"

    head = f"source={source} dyno={dyno_id}"
    groups = (
        ("load_avg_1m", "load_avg_5m", "load_avg_15m"),
        ("memory_total", "memory_rss", "memory_cache", "memory_swap", "memory_quota"),
        ("tasks", "tasks_limit", "processes", "threads", "zombies"),
    )
    lines = []
    for group in groups:
        parts = [fmt(name, values[name]) for name in group if name in values]
        if parts:
            lines.append(f"{head} {' '.join(parts)}")
    return lines


def warn_line(source: str, dyno_id: str, event: str, fields: dict) -> str:
    parts = [f"source={source}", f"dyno={dyno_id}", "at=warn", f"event={event}"]
    for key, value in fields.items():
        text = str(value)
        if any(char in text for char in ' ="\\') or not text:
            text = json.dumps(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def router_line(dyno: str, service_ms: int, status: int, code: str | None = None) -> str:
    if code:
        return (
            f'at=error code={code} desc="Request timeout" method=GET path="/orders?page=2" '
            f"host=myapp.herokuapp.com request_id=8601b555-6a83-4c12-8d3b-6f6a5d5b1c2e "
            f'fwd="203.0.113.9" dyno={dyno} connect=0ms service={service_ms}ms status={status} '
            "bytes=0 protocol=https"
        )
    return (
        f'at=info method=GET path="/orders?page=2" host=myapp.herokuapp.com '
        f"request_id=2d3b2f44-1b55-4b55-9d0e-6c1d9a4e7f10 "
        f'fwd="203.0.113.9" dyno={dyno} connect=1ms service={service_ms}ms status={status} '
        "bytes=1834 protocol=https"
    )


# -- the incident -------------------------------------------------------------------------


def incident(seed: int = 7, minutes: int = 120, prefix: str = "dynostat.") -> Incident:
    """Three dynos over two hours: web.1 leaks zombies into its task limit and crashes,
    web.2 grows into R14 and swaps, worker.1 stays healthy. Router lines for both webs."""
    rng = random.Random(seed)
    found = Incident()
    ticks = int(minutes * 60 / INTERVAL)
    leak_start, leak_peak = int(ticks * 0.45), int(ticks * 0.62)
    crash_tick = leak_peak + 3

    found.add(START + 300.5, "app", "api", "Release v42 created by user ops@example.com")
    found.add(START + 301.0, "app", "api", "Deploy 4f2a9c1 by user ops@example.com")

    for tick in range(ticks):
        base = START + tick * INTERVAL
        # -- web.1: zombies pile up under pid 8 until the limit bites -------------------
        exp = found.dyno("web.1")
        if tick < leak_start:
            zombies = 0
        elif tick <= leak_peak:
            zombies = int(214 * (tick - leak_start) / (leak_peak - leak_start))
        elif tick <= crash_tick:
            zombies = 214
        else:
            zombies = 0
        alive = tick < crash_tick or tick > crash_tick + 6
        if alive:
            tasks = 40 + zombies + rng.randint(0, 2)
            tasks = min(tasks, 256)
            if tick in (crash_tick - 1, crash_tick):
                tasks = 256
            memory = 180.0 + rng.random() * 20 + zombies * 0.05
            values = {
                "load_avg_1m": 0.4 + zombies / 100,
                "load_avg_5m": 0.3,
                "load_avg_15m": 0.25,
                "memory_total": memory,
                "memory_rss": memory - 10,
                "memory_cache": 10.0,
                "memory_swap": 0.0,
                "memory_quota": 512.0,
                "tasks": tasks,
                "tasks_limit": 256,
                "processes": 4 + zombies,
                "threads": tasks,
                "zombies": zombies,
            }
            for offset, line in enumerate(metric_lines("web.1", "d1f0a9-1", values, prefix)):
                found.add(base + 0.001 * offset, "app", "web.1", line)
            exp.peak("peak_tasks", tasks)
            exp.peak("peak_zombies", zombies)
            exp.peak("peak_memory_mb", float(f"{memory:.2f}"))
            exp.tasks_limit = 256
            exp.memory_quota_mb = 512.0
            exp.samples += 1
            if zombies:
                found.add(
                    base + 0.004,
                    "app",
                    "web.1",
                    f"source=web.1 dyno=d1f0a9-1 top#zombie_parents=8/leaky_worker:{zombies}",
                )
            if leak_start + 3 <= tick <= leak_peak and (tick - leak_start) % 3 == 0:
                line = warn_line(
                    "web.1",
                    "d1f0a9-1",
                    "zombies_rising",
                    {"zombies": zombies, "from": 1, "rises": 3, "pid": 8, "comm": "leaky_worker"},
                )
                found.add(base + 0.005, "app", "web.1", line)
                exp.warned(base + 0.005, "zombies_rising", 8, "leaky_worker")
            if tasks * 100 >= 80 * 256 and tick % 3 == 0:
                line = warn_line(
                    "web.1",
                    "d1f0a9-1",
                    "tasks_near_limit",
                    {
                        "tasks": tasks,
                        "tasks_limit": 256,
                        "pct": tasks * 100 // 256,
                        "pid": 8,
                        "comm": "leaky_worker",
                        "zombies": zombies,
                    },
                )
                found.add(base + 0.006, "app", "web.1", line)
                exp.warned(base + 0.006, "tasks_near_limit", 8, "leaky_worker")
        if tick in (crash_tick - 1, crash_tick):
            message = (
                "leaky_worker[8]: fork failed: EAGAIN (Resource temporarily unavailable) "
                "after 252 children"
            )
            found.add(base + 5.5, "app", "web.1", message)
            exp.fork_failures += 1
            exp.failed(base + 5.5)
        if tick == crash_tick:
            found.add(base + 8.0, "heroku", "web.1", "Process exited with status 1")
            found.add(base + 8.1, "heroku", "web.1", "State changed from up to crashed")
            exp.crashes += 1
        if tick == crash_tick + 1:
            found.add(base + 1.0, "heroku", "web.1", "State changed from crashed to starting")
            exp.restarts += 1
            found.add(
                base + 2.0, "heroku", "web.1", "Starting process with command `bundle exec puma`"
            )
            found.add(base + 6.0, "heroku", "web.1", "State changed from starting to up")

        # -- web.2: memory grows past the quota: R14, swapping ---------------------------
        exp2 = found.dyno("web.2")
        grow = max(0.0, (tick - ticks * 0.3) / (ticks * 0.7))
        memory = 250.0 + 300.0 * grow + rng.random() * 5
        swap = max(0.0, memory - 512.0)
        values = {
            "load_avg_1m": 1.2 + grow,
            "load_avg_15m": 1.0,
            "memory_total": memory,
            "memory_rss": memory - swap - 8,
            "memory_cache": 8.0,
            "memory_swap": swap,
            "memory_quota": 512.0,
            "tasks": 38 + rng.randint(0, 3),
            "tasks_limit": 256,
            "threads": 38,
            "zombies": 0,
        }
        for offset, line in enumerate(metric_lines("web.2", "77be21-2", values, prefix)):
            found.add(base + 0.2 + 0.001 * offset, "app", "web.2", line)
        exp2.peak("peak_tasks", values["tasks"])
        exp2.peak("peak_zombies", 0)
        exp2.peak("peak_memory_mb", float(f"{memory:.2f}"))
        exp2.tasks_limit = 256
        exp2.memory_quota_mb = 512.0
        exp2.samples += 1
        if memory * 100 >= 90 * 512 and tick % 3 == 0:
            line = warn_line(
                "web.2",
                "77be21-2",
                "memory_near_quota",
                {
                    "memory_total": f"{memory:.2f}MB",
                    "memory_quota": "512.00MB",
                    "pct": int(memory * 100 / 512),
                    "pid": 11,
                    "comm": "puma: cluster worker 0",
                    "rss": f"{memory - 40:.2f}MB",
                },
            )
            found.add(base + 0.25, "app", "web.2", line)
            exp2.warned(base + 0.25, "memory_near_quota", 11, "puma: cluster worker 0")
        if memory > 512.0 and tick % 2 == 0:
            found.add(
                base + 9.0,
                "heroku",
                "web.2",
                f"Process running mem={memory:.0f}M({memory / 5.12:.1f}%)",
            )
            found.add(base + 9.0, "heroku", "web.2", "Error R14 (Memory quota exceeded)")
            exp2.errors["R14"] += 1
            exp2.failed(base + 9.0)
        # Heroku's own runtime metrics, once a minute, beside dynostat's.
        if tick % 3 == 1:
            found.add(
                base + 3.0,
                "heroku",
                "web.2",
                f"source=web.2 dyno=heroku.2808254.77be21 sample#memory_total={memory:.2f}MB "
                f"sample#memory_rss={memory - swap:.2f}MB sample#memory_cache=0.00MB "
                f"sample#memory_swap={swap:.2f}MB sample#memory_pgpgin=348836pages "
                "sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB",
            )

        # -- worker.1: healthy ---------------------------------------------------------------
        exp3 = found.dyno("worker.1")
        values = {
            "load_avg_1m": 0.1,
            "memory_total": 120.0 + rng.random(),
            "memory_quota": 512.0,
            "tasks": 12,
            "tasks_limit": 256,
            "zombies": 0,
        }
        for offset, line in enumerate(metric_lines("worker.1", "0c0ffe-3", values, prefix)):
            found.add(base + 0.4 + 0.001 * offset, "app", "worker.1", line)
        exp3.peak("peak_tasks", 12)
        exp3.peak("peak_zombies", 0)
        exp3.peak("peak_memory_mb", float(f"{values['memory_total']:.2f}"))
        exp3.tasks_limit = 256
        exp3.memory_quota_mb = 512.0
        exp3.samples += 1

        # -- the router ----------------------------------------------------------------------
        for dyno in ("web.1", "web.2"):
            exp = found.dyno(dyno)
            exhausted = dyno == "web.1" and leak_peak - 2 <= tick <= crash_tick
            if dyno == "web.1" and not alive:
                found.add(
                    base + 11.0,
                    "heroku",
                    "router",
                    router_line("", 0, 503, "H10").replace(
                        'desc="Request timeout"', 'desc="App crashed"'
                    ),
                )
                found.unattributed["H10"] += 1
                continue
            service = 30000 if exhausted else int(40 + rng.random() * 60 + 200 * grow)
            code = "H12" if exhausted else None
            line = router_line(dyno, service, 503 if code else 200, code)
            found.add(base + 11.0 + (0.3 if dyno == "web.2" else 0), "heroku", "router", line)
            exp.requests += 1
            exp.service_ms.append(service)
            if code:
                exp.errors[code] += 1
                exp.failed(base + 11.0, request=True)
    found.records.sort(key=lambda record: record.time)
    return found


# -- formats ------------------------------------------------------------------------------


def heroku_logs(records: list[Record], colour: bool = False) -> list[str]:
    """``heroku logs`` text; with colour, as the CLI prints to a terminal."""
    lines = []
    for record in records:
        prefix = f"{iso(record.time)} {record.emitter}[{record.process}]:"
        if colour:
            prefix = f"\x1b[36m{prefix}\x1b[0m"
        lines.append(f"{prefix} {record.message}")
    return lines


def logplex_frame(record: Record) -> bytes:
    """One octet-counted RFC 5424 frame, as an HTTPS drain body holds it."""
    frame = (
        f"<190>1 {iso(record.time)} host {record.emitter} {record.process} - {record.message}\n"
    ).encode()
    return str(len(frame)).encode() + b" " + frame


def drain_body(records: list[Record]) -> bytes:
    return b"".join(logplex_frame(record) for record in records)


def syslog_lines(records: list[Record]) -> list[str]:
    """Frames without counts, one per line, as a syslog drain's receiver writes them."""
    return [
        f"<190>1 {iso(record.time)} d.0f3a8c1e {record.emitter} {record.process} - {record.message}"
        for record in records
    ]


def papertrail_archive(records: list[Record]) -> list[str]:
    """Tab-separated archive lines: id, generated_at, received_at, source ids, program, text."""
    lines = []
    for number, record in enumerate(records):
        when = datetime.fromtimestamp(record.time, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        fraction = f"{record.time - math.floor(record.time):.6f}"[1:]
        lines.append(
            "\t".join(
                [
                    str(100000 + number),
                    when + fraction,
                    when,
                    "42",
                    "myapp",
                    "198.51.100.7",
                    "User",
                    "Info",
                    f"{record.emitter}/{record.process}",
                    record.message,
                ]
            )
        )
    return lines


def json_lines(records: list[Record], bare: bool = True) -> list[str]:
    """dynostat's lines as DYNOSTAT_FORMAT=json prints them (one object per tick with every
    metric, events without a time), everything else as ``heroku logs`` text. Bare: as the
    agent's stdout was saved; else inside ``heroku logs`` envelopes."""
    lines: list[str] = []
    pending: dict[str, dict] = {}

    def flush(source: str) -> None:
        document = pending.pop(source, None)
        if document is not None:
            emit(document["time"], source, json.dumps(document, separators=(",", ":")))

    def emit(time: float, source: str, text: str) -> None:
        lines.append(text if bare else f"{iso(time)} app[{source}]: {text}")

    for record in records:
        message = record.message
        if record.emitter != "app" or not message.startswith("source="):
            lines.append(heroku_logs([record])[0])
            continue
        fields = readme_decoder.fields(message)
        source = fields["source"]
        if any(key.startswith("sample#") for key in fields):
            document = pending.get(source)
            if document is not None and record.time - document["time"] > 1.0:
                flush(source)
                document = None
            if document is None:
                document = pending[source] = {
                    "source": source,
                    "dyno": fields["dyno"],
                    "time": round(record.time, 3),
                    "sample": {},
                    "units": {},
                }
            for key, value in fields.items():
                if key.startswith("sample#"):
                    name = key[7:]
                    digits = value.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                    document["sample"][name] = json.loads(digits)
                    if value[len(digits) :]:
                        document["units"][name] = value[len(digits) :]
        elif any(key.startswith("top#") for key in fields):
            document = pending.setdefault(source, {"source": source, "time": record.time})
            for key, value in fields.items():
                if key.startswith("top#"):
                    entries = [
                        {"pid": pid, "comm": comm, "zombies": int(count)}
                        for pid, comm, count in readme_decoder.top(value)
                    ]
                    document.setdefault("top", {})[key[4:]] = entries
        else:
            flush(source)
            event = {"source": source, "dyno": fields["dyno"]}
            for key, value in fields.items():
                if key in ("source", "dyno"):
                    continue
                event[key] = int(value) if value.isdigit() else value
            emit(record.time, source, json.dumps(event, separators=(",", ":")))
    for source in list(pending):
        flush(source)
    return lines
