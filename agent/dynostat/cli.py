"""``python3 -m dynostat``: parse the command line, build the agent, run its loop.

    dynostat [--interval S] [--count N] [--once] [--format logfmt|json]
             [--proc-root DIR] [--cgroup-root DIR] [--lock FILE]

Flags override config vars. ``--lock FILE`` is how the dyno's launcher guarantees exactly one
agent per dyno: the agent takes the lock of FILE (see ``dynostat.lock``) and, if another agent
holds it, exits 0 without a word. In that launched mode the agent is also the one place that
decides whether this dyno gets an agent at all (``stays_out``): it exits 0, silently, when
``DYNOSTAT_DISABLE`` is set, when there is no ``DYNO`` (a ``heroku ps:exec`` session) or when
``DYNOSTAT_PROCESS_TYPES`` leaves this dyno's process type out. Run by hand it always samples,
because the user asked it to.

Exit status: 0 after ``--count``/``--once``, after SIGTERM/SIGINT, when stdout is closed, when
another agent holds the lock; 2 for a bad command line. An unexpected crash prints one
``at=error event=agent_crash`` line and, after one interval, re-executes the agent in place
(same pid, no supervisor process); repeated crashes double the wait, up to an hour.
"""

from __future__ import annotations

import os
import sys
import time

from dynostat import __version__, config, lock
from dynostat.alerts import Alerts
from dynostat.identity import Identity, identify, process_type
from dynostat.logwriter import LineWriter, OutputClosed
from dynostat.loop import Agent, Reporter, Schedule, Signals, StopRequested, describe
from dynostat.numbers import parse_decimal, parse_whole
from dynostat.output import Formatter
from dynostat.selfcost import SelfCost

# typing and collections cost memory at run time; only type checkers read these.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# How many crash re-executions happened in a row; read back by the re-executed agent.
RESTARTS_VAR = "DYNOSTAT_RESTARTS"
# A run that lasted this long before crashing counts as healthy: the back-off starts over.
HEALTHY_RUN_S = 600.0
MAX_RESTART_WAIT_S = 3600.0
# Past this many crashes in a row the wait is an hour anyway; the count only needs to get here.
MAX_RESTARTS = 1000
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


# Flag -> (destination, check) for the flags that take a value.
_VALUE_FLAGS = {
    "--interval": ("interval", check_interval),
    "--count": ("count", check_count),
    "--format": ("format", check_format),
    "--proc-root": ("proc_root", str),
    "--cgroup-root": ("cgroup_root", str),
    "--lock": ("lock", str),
}


def parse_args(argv: Sequence[str]) -> dict[str, object]:
    """The flags as a dict of destinations (None for flags not given).

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
    flags: dict[str, object] = {dest: None for dest, _ in _VALUE_FLAGS.values()}
    flags["once"] = False
    position = 0
    while position < len(argv):
        arg = argv[position]
        position += 1
        if arg == "--once":
            flags["once"] = True
            continue
        name, equals, value = arg.partition("=")
        if name not in _VALUE_FLAGS:
            return None
        if not equals:
            if position >= len(argv):
                return None
            value = argv[position]
            position += 1
        dest, check = _VALUE_FLAGS[name]
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
    parser.add_argument(
        "--interval",
        type=argparse_type(check_interval),
        metavar="S",
        help="seconds between samples (default DYNOSTAT_INTERVAL or 20; "
        "0.01 to 3600 here, 1 to 3600 in the config var)",
    )
    parser.add_argument(
        "--count", type=argparse_type(check_count), metavar="N", help="take N samples, then exit"
    )
    parser.add_argument("--once", action="store_true", help="take one sample, then exit")
    parser.add_argument("--format", choices=config.FORMATS, help="output format")
    parser.add_argument("--proc-root", metavar="DIR", help="procfs to read (default /proc)")
    parser.add_argument(
        "--cgroup-root", metavar="DIR", help="cgroup tree to read (default /sys/fs/cgroup)"
    )
    parser.add_argument(
        "--lock",
        metavar="FILE",
        help="hold an exclusive lock on FILE; exit 0 silently if another agent holds it",
    )
    parser.add_argument("--version", action="version", version=f"dynostat {__version__}")
    return parser


def settings(flags: Mapping[str, object], env: Mapping[str, str]):
    """(config after vars and flags, the config_invalid error fields to print)."""
    base, errors = config.from_env(env)
    overrides = {
        "interval": flags["interval"],
        "count": 1 if flags["once"] else flags["count"],
        "format": flags["format"],
        "proc_root": flags["proc_root"],
        "cgroup_root": flags["cgroup_root"],
        "lock": flags["lock"],
    }
    return config.with_flags(base, overrides), errors


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


def _make_sink(cfg: config.Config, env: Mapping[str, str], reporter: Reporter):
    if not cfg.push:
        return None
    try:
        # Imported only when DYNOSTAT_URL is set: pushing costs memory an agent that only
        # prints lines must not pay.
        from dynostat.push import make_sink  # noqa: PLC0415
    except ImportError as exc:
        reporter({"at": "error", "event": "push_unavailable", "reason": describe(exc)})
        return None
    return make_sink(env, cfg.interval, reporter)


def run(
    cfg: config.Config,
    env: Mapping[str, str],
    identity: Identity,
    reporter: Reporter,
    signals: Signals,
    *,
    clock=time.monotonic,
) -> None:
    """Build the sampler and sink and run the loop until count, a stop, or a crash."""
    from dynostat.sampler import make_sampler  # noqa: PLC0415

    sampler = make_sampler(cfg.proc_root, cfg.cgroup_root, cfg.top, reporter)
    sink = _make_sink(cfg, env, reporter)
    agent = Agent(
        sampler,
        reporter,
        alerts=Alerts(cfg.warn_tasks_pct, cfg.warn_memory_pct, clock=clock),
        cost=SelfCost(),
        sink=sink,
        identity=(identity.source, identity.dyno),
        signals=signals,
    )
    writer = reporter.writer
    schedule = Schedule(
        cfg.interval,
        clock=clock,
        sleep=signals.sleep,
        stopping=lambda: signals.requested,
        on_deadline=lambda deadline: setattr(writer, "deadline", deadline),
        on_skipped=writer.count_skipped,
    )
    schedule.run(agent.tick, count=cfg.count)


def restart_command(argv: Sequence[str], script: str | None = None) -> list[str]:
    """The command line that runs this agent again with the same arguments.

    The agent started by the ``dynostat-agent`` script (as on dynos, ``script`` defaults to
    ``sys.argv[0]``) restarts through it again; otherwise through ``-m dynostat``. Either
    needs the package on the path: the re-executed agent gets it through PYTHONPATH (see
    ``restart_env``), so isolation flags that would hide PYTHONPATH (-I, -E) are not passed
    on; -S and -s are.
    """
    if script is None:
        script = sys.argv[0] if sys.argv else ""
    flags = []
    if sys.flags.no_site:
        flags.append("-S")
    if sys.flags.no_user_site or sys.flags.isolated:
        flags.append("-s")
    if sys.flags.dont_write_bytecode:
        flags.append("-B")
    if os.path.basename(script) == "dynostat-agent" and os.path.isfile(script):
        return [sys.executable, *flags, os.path.abspath(script), *argv]
    return [sys.executable, *flags, "-m", "dynostat", *argv]


def restart_env(env: Mapping[str, str], restarts: int) -> dict[str, str]:
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    new_env = dict(env)
    path = new_env.get("PYTHONPATH", "")
    if package_parent not in path.split(os.pathsep):
        new_env["PYTHONPATH"] = package_parent + (os.pathsep + path if path else "")
    new_env[RESTARTS_VAR] = str(restarts)
    return new_env


def restart_wait(interval: float, restarts: int) -> float:
    """One interval after the first crash, doubling with each crash in a row, up to an hour."""
    return min(interval * (2 ** min(restarts, 16)), MAX_RESTART_WAIT_S)


def previous_restarts(env: Mapping[str, str]) -> int:
    restarts = parse_whole(env.get(RESTARTS_VAR, ""), 0, MAX_RESTARTS)
    return 0 if restarts is None else restarts


def stays_out(cfg: config.Config, env: Mapping[str, str]) -> bool:
    """Whether a launched agent (one with ``--lock``) must not run in this dyno.

    The one place that decides it. The launcher starts the agent in every dyno except where
    this function provably says True (see vendor/dynostat-launcher.sh), and the cases both
    are tested against live in tests/cases/process_types.tsv.
    """
    if cfg.lock is None:
        return False  # run by hand: the user asked for samples
    if cfg.disable:
        return True
    # No dyno name: not a dyno, or a `heroku ps:exec` session, whose dyno has its own agent
    # already (or, being a one-off, is meant to have none).
    dyno_name = env.get("DYNO", "").strip()
    return not dyno_name or not cfg.runs_in(process_type(dyno_name))


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

    cfg, errors = settings(flags, env)
    real_stdout = stdout_fd is None
    fd = 1 if stdout_fd is None else stdout_fd
    # Started with fd 1 closed: there is nobody to print for.
    if stays_out(cfg, env) or not _is_open(fd):
        return 0
    identity = identify(env)
    formatter = Formatter(identity.source, identity.dyno, cfg.format, cfg.metric_prefix)
    signals = Signals()
    writer = LineWriter(fd, formatter.event_line, stop=signals)
    reporter = Reporter(formatter, writer)
    signals.install()
    try:
        for fields in errors:
            reporter(fields)
        if not _locked(cfg, reporter):
            return 0
        try:
            run(cfg, env, identity, reporter, signals)
        except Exception as exc:  # noqa: BLE001 -- a crash becomes one line and a re-exec
            return _crash(
                exc,
                cfg,
                env,
                reporter,
                signals,
                args_list=args_list,
                started=started,
                execve=execve,
            )
        return 0
    except StopRequested:
        return 0
    except OutputClosed:
        if real_stdout:
            _silence_stdout()
        return 0
    finally:
        signals.uninstall()


# What holds the lock: kept (and so the lock held) for as long as the process lives.
_held_lock: lock.Held | None = None


def _locked(cfg: config.Config, reporter: Reporter) -> bool:
    """Take ``--lock`` if asked; False when another agent holds it (this one must go)."""
    global _held_lock  # noqa: PLW0603 -- one lock per process, held until it exits
    if cfg.lock is None:
        return True
    try:
        held = lock.take(cfg.lock)
    except OSError as exc:
        # Neither the file nor the socket could be used. Running unlocked risks a second
        # agent; not running hides every metric. Two agents show up plainly in the logs,
        # with this line to explain them.
        reporter({"at": "error", "event": "lock_failed", "path": cfg.lock, "reason": describe(exc)})
        return True
    if held is None:
        return False
    _held_lock = held
    return True


def _crash(exc, cfg, env, reporter, signals, *, args_list, started, execve) -> int:
    """Say why the agent crashed, wait, and replace this process with a fresh agent."""
    restarts = previous_restarts(env)
    if time.monotonic() - started >= HEALTHY_RUN_S:
        restarts = 0
    wait = restart_wait(cfg.interval, restarts)
    reporter(
        {
            "at": "error",
            "event": "agent_crash",
            "reason": describe(exc),
            "restarts": restarts,
            "restart_in": f"{wait:g}s",
        }
    )
    if signals.sleep(wait):
        return 0
    if not sys.executable:
        return 1
    command = restart_command(args_list)
    try:
        execve(command[0], command, restart_env(env, restarts + 1))
    except OSError as error:
        reporter({"at": "error", "event": "restart_failed", "reason": describe(error)})
        return 1
    return 1  # only reached when a test's execve returns instead of replacing the process
