"""What happens when the agent crashes: one line saying why, a wait, a fresh agent.

There is no supervisor process (the agent starts none): ``restart_after_crash`` prints one
``at=error event=agent_crash`` line, waits one interval, and re-executes the agent in place,
same pid, same arguments. Each crash in a row doubles the wait, up to an hour; a run that
lasted ``HEALTHY_RUN_S`` before crashing starts the back-off over. The count of crashes in a
row travels to the re-executed agent in ``DYNOSTAT_RESTARTS``, which ``config.load`` reads.
"""

from __future__ import annotations

import os
import sys
import time

from dynostat.config import MAX_RESTARTS, RESTARTS_VAR
from dynostat.loop import describe

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read these
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from dynostat.config import Config
    from dynostat.loop import Reporter, Signals

# A run that lasted this long before crashing counts as healthy: the back-off starts over.
HEALTHY_RUN_S = 600.0
MAX_RESTART_WAIT_S = 3600.0


def restart_after_crash(
    error: BaseException,
    config: Config,
    reporter: Reporter,
    signals: Signals,
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
    started: float,
    execve: Callable[[str, list[str], dict[str, str]], object] = os.execve,
) -> int:
    """Say why the agent crashed, wait, and replace this process with a fresh agent.

    Returns an exit status only when no fresh agent could be started (or a stop signal came
    during the wait, 0); otherwise it never returns.
    """
    restarts = config.restarts
    if time.monotonic() - started >= HEALTHY_RUN_S:
        restarts = 0
    wait = restart_wait(config.interval, restarts)
    reporter(
        {
            "at": "error",
            "event": "agent_crash",
            "reason": describe(error),
            "restarts": restarts,
            "restart_in": f"{wait:g}s",
        }
    )
    if signals.sleep(wait):
        return 0
    if not sys.executable:
        return 1
    command = restart_command(argv)
    try:
        execve(command[0], command, restart_env(env, min(restarts + 1, MAX_RESTARTS)))
    except OSError as exec_error:
        reporter({"at": "error", "event": "restart_failed", "reason": describe(exec_error)})
    return 1


def restart_wait(interval: float, restarts: int) -> float:
    """One interval after the first crash, doubling with each crash in a row, up to an hour."""
    return min(interval * (2 ** min(restarts, 16)), MAX_RESTART_WAIT_S)


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
    """The environment of the re-executed agent: this one's, with the package on the path
    and the count of crashes in a row."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    new_env = dict(env)
    path = new_env.get("PYTHONPATH", "")
    if package_parent not in path.split(os.pathsep):
        new_env["PYTHONPATH"] = package_parent + (os.pathsep + path if path else "")
    new_env[RESTARTS_VAR] = str(restarts)
    return new_env
