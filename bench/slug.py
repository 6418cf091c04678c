"""The agent as a slug ships it, for the benchmarks that run it: its modules compiled once.

A slug carries the agent's byte-code (bin/compile compiles it) and its Python carries the
standard library's. An agent that has to compile its modules at start-up shows that work in
its peak memory, about 1 MB, so the benchmarks compile first, into a cache of their own
outside the work tree, and run the agent once before they measure it, so that the standard
library modules it imports are in that cache too.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

PYCACHE = Path(tempfile.gettempdir()) / "dynostat-bench-pycache"


def deployed_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with byte-code written to and read from the cache, whatever the caller's
    PYTHONDONTWRITEBYTECODE says."""
    env = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def compile_into_cache(python: str, env: dict[str, str], *folders: Path) -> None:
    """``folders`` compiled by ``python`` into the cache ``env`` (from deployed_env) names."""
    subprocess.run(
        [python, "-m", "compileall", "-q", *map(str, folders)],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )


def remove_cache() -> None:
    shutil.rmtree(PYCACHE, ignore_errors=True)
