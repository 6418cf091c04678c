"""Whether the agent's memory stays flat over many ticks: no per-tick allocation that grows.

    python3 bench/bench_soak.py [--ticks 5000] [--interval 0.01]

Runs the real agent as dynos run it (``python3 -S agent/dynostat-agent``) for many ticks at a
short interval on this machine's /proc, and prints its own ``agent_rss`` at a few ticks along
the way. Five thousand ticks at 0.01 s are what 28 hours of the default 20 s interval do.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the support package

import slug
from support.paths import AGENT, AGENT_SCRIPT, SYSTEM_PYTHON

RSS = re.compile(rb"sample#dynostat\.agent_rss=([0-9.]+)MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=0.01)
    args = parser.parse_args()
    command = [
        SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable,
        "-S",
        str(AGENT_SCRIPT),
        "--interval",
        str(args.interval),
        "--count",
        str(args.ticks),
    ]
    env = slug.deployed_env(
        {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(AGENT), "DYNO": "soak.1"}
    )
    # The modules compiled first, as the slug ships them, and one short run so that the
    # standard library's are too (see bench/slug.py).
    try:
        slug.compile_into_cache(command[0], env, AGENT)
        subprocess.run([*command[:-1], "2"], env=env, capture_output=True, check=True)
        result = subprocess.run(command, env=env, capture_output=True, check=True, timeout=3600)
    finally:
        slug.remove_cache()
    if b"at=error" in result.stdout:
        raise SystemExit("bench: the agent reported an error:\n" + result.stdout.decode())
    rss = [float(value) for value in RSS.findall(result.stdout)]
    marks = sorted({1, 10, 100, 1000, len(rss) // 2, len(rss)} & set(range(1, len(rss) + 1)))
    print(f"agent_rss over {len(rss)} ticks at {args.interval} s ({' '.join(command[:2])})\n")
    print("| tick | agent_rss MB |\n|---:|---:|")
    for tick in marks:
        print(f"| {tick} | {rss[tick - 1]:.2f} |")
    settled = rss[len(rss) // 10 :]
    print(
        f"\nfrom tick {len(rss) // 10 + 1} on: min {min(settled):.2f} MB, max {max(settled):.2f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
