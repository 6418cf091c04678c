"""The real agent as a child process: ``python -m dynostat`` with the agent on PYTHONPATH.

Its environment is built, never inherited: a test sees the same agent whatever the machine's
own DYNOSTAT_* or PYTHON* variables are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from support.paths import AGENT

# The dyno every test's agent runs in unless the test says otherwise: what `source=` and
# `dyno=` of its lines say.
DYNO_ENV = {"DYNO": "web.1", "HEROKU_DYNO_ID": "d-1"}


def agent_env(variables: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """PATH, the agent on PYTHONPATH and DYNO_ENV, then ``variables`` over them; a variable
    given as None is left out (a dyno without a name, say)."""
    env: dict[str, str | None] = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(AGENT),
        **DYNO_ENV,
        **(variables or {}),
    }
    return {name: value for name, value in env.items() if value is not None}


def agent_command(
    args: Sequence[str], python: str = sys.executable, flags: Sequence[str] = ()
) -> list[str]:
    """``python [flags] -m dynostat args``."""
    return [python, *flags, "-m", "dynostat", *args]


def run_agent(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    *,
    python: str = sys.executable,
    flags: Sequence[str] = (),
    timeout: float = 10.0,
    **options,
) -> subprocess.CompletedProcess:
    """Runs the agent to its end with ``env`` merged into agent_env(); its stdout and stderr
    are captured (as bytes, unless ``text=True``). Other options go to subprocess.run."""
    return _run(agent_command(args, python, flags), env, timeout, options)


def run_code(
    code: str,
    *args: str,
    env: Mapping[str, str | None] | None = None,
    flags: Sequence[str] = (),
    timeout: float = 10.0,
    **options,
) -> subprocess.CompletedProcess:
    """``python [flags] -c code args`` with the agent importable, run like run_agent: for a
    test that must look inside a fresh interpreter (what it imported, what a call did)."""
    return _run([sys.executable, *flags, "-c", code, *args], env, timeout, options)


def _run(command: list[str], env, timeout: float, options: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, env=agent_env(env), capture_output=True, timeout=timeout, check=False, **options
    )


def start_agent(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    *,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    **options,
) -> subprocess.Popen:
    """Starts the agent with ``env`` merged into agent_env(); its stdout and stderr go where
    they are given (pipes the test reads by default). Stop it with support.processes.stop."""
    return subprocess.Popen(
        agent_command(args), env=agent_env(env), stdout=stdout, stderr=stderr, **options
    )
