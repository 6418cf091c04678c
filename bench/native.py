"""The C programs the benchmarks build: the kernel's floor, and a population of processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def compile_helpers(build: Path) -> tuple[Path, Path]:
    """``floor.c`` and ``population.c`` compiled with -O2 into ``build``: (floor, population)."""
    binaries = []
    for name in ("floor", "population"):
        binary = build / name
        subprocess.run(["cc", "-O2", "-o", str(binary), str(BENCH / f"{name}.c")], check=True)
        binaries.append(binary)
    return binaries[0], binaries[1]
