"""Replay the zombie incident in a dyno on this machine, in about a minute.

    sudo python3 tests/dyno/demo.py [--all]

Builds tests/dyno/apps/zombies with this buildpack, boots it as web.1 with a Standard-1X
task limit (256), and lets its worker fork children it never waits for until fork fails
with EAGAIN. Shows the agent's task lines and warnings as they arrive, the first fork
failures, the recovery once the worker gives up, and then how long before the first EAGAIN
the agent named the culprit. Exit status 0 when the warning came first.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the support package

import harness
from scenario import APP_FILES, APPS

from support import readme_decoder

TASKS_LIMIT = 256  # Standard-1X
INTERVAL = 2
CONFIG = {
    "DYNOSTAT_INTERVAL": str(INTERVAL),
    "ZOMBIE_RATE": "5",  # 256 tasks in about 50 s
    "ZOMBIE_GIVE_UP": "6",
}
# What the demo shows unless --all: the task numbers, the culprits, warnings, the app's
# fork failures and the platform's own lines. Load and memory lines are left out.
SHOWN = re.compile(r"sample#dynostat\.tasks=|top#|at=warn|at=error|leaky_worker|web\[")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="show every line of the log")
    args = parser.parse_args()
    reason = harness.unsupported_reason()
    if reason:
        print(f"demo: cannot run a dyno here: {reason}", file=sys.stderr)
        return 2

    def show(line: harness.LogLine) -> None:
        if args.all or line.source == "heroku" or SHOWN.search(line.text):
            print(line, flush=True)

    print(
        f"Building {APPS.name}/zombies with the dynostat buildpack and booting it as web.1 "
        f"(task limit {TASKS_LIMIT}, DYNOSTAT_INTERVAL={INTERVAL})...",
        flush=True,
    )
    with harness.run(
        APPS / "zombies",
        "python3 web.py",
        config=CONFIG,
        app_files=APP_FILES,
        tasks_limit=TASKS_LIMIT,
        grace=5,
        on_line=show,
    ) as session:
        dyno = session.dyno
        started = dyno.wait_for(r"leaky_worker\[\d+\]: started", 30)
        first_eagain = dyno.wait_for("fork failed: EAGAIN", 120)
        gave_up = dyno.wait_for("giving up", 60)
        dyno.wait_for(
            lambda line: line.mono > gave_up.mono and harness.metric(line, "zombies") == 0,
            4 * INTERVAL,
        )
        dyno.stop()
    early = [w for w in harness.warnings(dyno.lines) if w.mono < first_eagain.mono]
    print()
    print(f"worker started           +{0:5.1f} s")
    for warning in early:
        fields = readme_decoder.fields(warning.text)
        print(
            f"{fields['event']:<24} +{warning.mono - started.mono:5.1f} s  "
            f"pid={fields.get('pid')} comm={fields.get('comm')}"
        )
    print(f"first fork EAGAIN        +{first_eagain.mono - started.mono:5.1f} s")
    if not early:
        print("The agent did not warn before the first EAGAIN.")
        return 1
    lead = first_eagain.mono - early[0].mono
    print(f"The agent named the culprit {lead:.1f} s before the first fork failed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
