"""``python3 -m dynostat``: read the command line, build the agent, run its loop.

    dynostat [--interval S] [--count N] [--once] [--format logfmt|json]
             [--proc-root DIR] [--cgroup-root DIR] [--lock FILE]

Flags override config vars. ``--lock FILE`` is how the dyno's launcher guarantees exactly one
agent per dyno: the agent takes the lock of FILE (see ``dynostat.lock``) and, if another agent
holds it, exits 0 without a word. In that launched mode the agent is also the one place that
decides whether this dyno gets an agent at all (``Config.must_stay_out``): it exits 0,
silently, when ``DYNOSTAT_DISABLE`` is set, when there is no ``DYNO`` (a ``heroku ps:exec``
session) or when ``DYNOSTAT_PROCESS_TYPES`` leaves this dyno's process type out. Run by hand
it always samples, because the user asked it to.

Exit status: 0 after ``--count``/``--once``, after SIGTERM/SIGINT, when stdout is closed, when
another agent holds the lock; 2 for a bad command line. An unexpected crash is handled by
``dynostat.supervisor``: one line, a wait, the agent again in the same process.
"""

from __future__ import annotations

import os
import sys
import time

from dynostat import __version__, config, lock, supervisor
from dynostat.alerts import Alerts
from dynostat.identity import identify
from dynostat.logwriter import LineWriter, OutputClosed
from dynostat.loop import Reporter, Schedule, Signals, StopRequested, TickWork, describe
from dynostat.numbers import parse_decimal, parse_whole
from dynostat.output import Formatter
from dynostat.selfcost import SelfCost

# typing and collections cost memory at run time; only type checkers read these.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dynostat.identity import Identity

# --count takes any number of samples a person could want; a year of 1 s samples is plenty.
MAX_COUNT = 10**9


def check_interval(text: str) -> float:
    """``--interval``: seconds, 0.01 to 3600 (finer than the config var, for benchmarks)."""
    value = parse_decimal(text, config.MIN_CLI_INTERVAL, config.MAX_INTERVAL)
    if value is None:
        raise ValueError(
            f"must be a number of seconds from {config.MIN_CLI_INTERVAL} to "
            f"{config.MAX_INTERVAL:g}: {text!r}"
        )
    return value


def check_count(text: str) -> int:
    """``--count``: a whole number of samples, 1 or more."""
    value = parse_whole(text, 1, MAX_COUNT)
    if value is None:
        raise ValueError(f"must be a whole number of samples, 1 or more: {text!r}")
    return value


def check_format(text: str) -> str:
    if text not in config.FORMATS:
        raise ValueError(f"must be one of {', '.join(config.FORMATS)}")
    return text


# Every flag, once: (flag, destination, check of its value or None for a switch, metavar,
# help). The quick parser and argparse's help and errors are both made from this table.
FLAGS = (
    (
        "--interval",
        "interval",
        check_interval,
        "S",
        "seconds between samples (default DYNOSTAT_INTERVAL or 20; 0.01 to 3600 here, "
        "1 to 3600 in the config var)",
    ),
    ("--count", "count", check_count, "N", "take N samples, then exit"),
    ("--once", "once", None, None, "take one sample, then exit"),
    ("--format", "format", check_format, "logfmt|json", "output format"),
    ("--proc-root", "proc_root", str, "DIR", "procfs to read (default /proc)"),
    ("--cgroup-root", "cgroup_root", str, "DIR", "cgroup tree to read (default /sys/fs/cgroup)"),
    (
        "--lock",
        "lock",
        str,
        "FILE",
        "hold an exclusive lock on FILE; exit 0 silently if another agent holds it",
    ),
)


def parse_args(argv: Sequence[str]) -> dict[str, object]:
    """The flags as a dict of destinations (None for flags not given, False for switches).

    The common, well-formed command lines are read directly: argparse alone costs more
    than a megabyte of the agent's memory (on Python 3.9 it even loads shutil, bz2, lzma
    and threading just to ask the terminal's width), which a dyno pays every second of
    its life. Anything else (``--help``, ``--version``, an error, an abbreviation) goes to
    the full argparse parser, which gives the usual usage text and exits 2 on errors.
    """
    flags = _parse_plain(argv)
    if flags is None:
        return vars(build_parser().parse_args(argv))
    return flags


def _parse_plain(argv: Sequence[str]) -> dict[str, object] | None:
    by_flag = {flag: (dest, check) for flag, dest, check, _, _ in FLAGS}
    flags: dict[str, object] = {
        dest: (False if check is None else None) for dest, check in by_flag.values()
    }
    position = 0
    while position < len(argv):
        arg = argv[position]
        position += 1
        name, equals, value = arg.partition("=")
        if name not in by_flag:
            return None
        dest, check = by_flag[name]
        if check is None:
            if equals:
                return None
            flags[dest] = True
            continue
        if not equals:
            if position >= len(argv):
                return None
            value = argv[position]
            position += 1
        try:
            flags[dest] = check(value)
        except ValueError:
            return None
    return flags


def build_parser():
    """The full argparse parser: help, version, abbreviations and error messages."""
    import argparse  # noqa: PLC0415 -- see parse_args

    def argparse_type(check):
        def convert(text: str):
            try:
                return check(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        return convert

    parser = argparse.ArgumentParser(
        prog="dynostat",
        description="Sample a dyno's memory, load, tasks, threads and zombies; print logfmt "
        "lines every interval. Flags override DYNOSTAT_* config vars.",
    )
    for flag, dest, check, metavar, help_text in FLAGS:
        if check is None:
            parser.add_argument(flag, dest=dest, action="store_true", help=help_text)
        else:
            parser.add_argument(
                flag, dest=dest, type=argparse_type(check), metavar=metavar, help=help_text
            )
    parser.add_argument("--version", action="version", version=f"dynostat {__version__}")
    return parser


def config_flags(flags: Mapping[str, object]) -> dict[str, object]:
    """The command line's flags as the Config fields they set (None: not given)."""
    overrides = {name: value for name, value in flags.items() if name != "once"}
    if flags.get("once"):
        overrides["count"] = 1
    return overrides


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout_fd: int | None = None,
    execve=os.execve,
) -> int:
    """Run the agent; returns the exit status (see the module docstring)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    flags = parse_args(args_list)
    env = os.environ if env is None else env
    started = time.monotonic()

    settings, errors = config.load(env, config_flags(flags))
    fd = 1 if stdout_fd is None else stdout_fd
    # Started with fd 1 closed: there is nobody to print for.
    if settings.must_stay_out() or not _is_open(fd):
        return 0
    identity = identify(settings.dyno, drop_in=settings.metric_prefix == "")
    formatter = Formatter(identity.source, identity.dyno, settings.format, settings.metric_prefix)
    signals = Signals()
    writer = LineWriter(fd, formatter.event_line, stop=signals)
    reporter = Reporter(formatter, writer)
    signals.install()
    try:
        for fields in errors:
            reporter(fields)
        if not _take_lock(settings, reporter):
            return 0
        try:
            run(settings, identity, reporter, signals)
        except Exception as exc:  # noqa: BLE001 -- a crash becomes one line and a re-exec
            return supervisor.restart_after_crash(
                exc,
                settings,
                reporter,
                signals,
                argv=args_list,
                env=env,
                started=started,
                execve=execve,
            )
        return 0
    except StopRequested:
        return 0
    except OutputClosed:
        if stdout_fd is None:
            _silence_stdout()
        return 0
    finally:
        signals.uninstall()


def run(
    settings: config.Config,
    identity: Identity,
    reporter: Reporter,
    signals: Signals,
    *,
    clock=time.monotonic,
) -> None:
    """Build the sampler and sink and run the loop until count, a stop, or a crash."""
    from dynostat.sampler import make_sampler  # noqa: PLC0415

    sampler = make_sampler(
        settings.proc_root,
        settings.cgroup_root,
        settings.top,
        reporter,
        settings.warn_memory_pct,
    )
    work = TickWork(
        sampler,
        reporter,
        alerts=Alerts(settings.warn_tasks_pct, settings.warn_memory_pct, clock=clock),
        cost=SelfCost(),
        sink=_make_sink(settings, reporter),
        identity=(identity.source, identity.dyno),
        signals=signals,
    )
    writer = reporter.writer
    schedule = Schedule(
        settings.interval,
        clock=clock,
        sleep=signals.sleep,
        stopping=lambda: signals.requested,
        on_deadline=lambda deadline: setattr(writer, "deadline", deadline),
        on_skipped=writer.count_skipped,
    )
    schedule.run(work.run, count=settings.count)


def _make_sink(settings: config.Config, reporter: Reporter):
    if settings.push is None:
        return None
    # Imported only when a push is asked for: pushing costs memory an agent that only prints
    # lines must not pay.
    from dynostat.push import make_sink  # noqa: PLC0415

    return make_sink(settings.push, settings.dyno, settings.interval, reporter)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot complain about EPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


# What holds the lock: kept (and so the lock held) for as long as the process lives.
_held_lock: lock.Held | None = None


def _take_lock(settings: config.Config, reporter: Reporter) -> bool:
    """Take ``--lock`` if asked; False when another agent holds it (this one must go)."""
    global _held_lock  # noqa: PLW0603 -- one lock per process, held until it exits
    if settings.lock is None:
        return True
    try:
        held = lock.take(settings.lock)
    except OSError as exc:
        # Neither the file nor the socket could be used. Running unlocked risks a second
        # agent; not running hides every metric. Two agents show up plainly in the logs,
        # with this line to explain them.
        reporter(
            {"at": "error", "event": "lock_failed", "path": settings.lock, "reason": describe(exc)}
        )
        return True
    if held is None:
        return False
    _held_lock = held
    return True
