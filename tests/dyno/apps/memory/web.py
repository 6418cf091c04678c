"""A web process whose memory grows to near the dyno's quota and stays there.

It reads its own memory cgroup (the dyno's), grows its heap in small steps until the
cgroup's rss + cache reach MEMORY_TARGET_PCT (default 94) of the limit, then holds: close
enough to the quota for the agent's warning, short of the OOM killer.
"""

from __future__ import annotations

import os

from serving import deadline, listen, log, memory_cgroup, serve, used_and_limit

STEP = 1024 * 1024


class Heap:
    """Grows by a step each turn until the cgroup's usage reaches the target, then holds."""

    def __init__(self, cgroup: str, target: float) -> None:
        self.cgroup = cgroup
        self.target = target
        self.steps: list[bytearray] = []
        self.holding = False

    def turn(self) -> None:
        used, limit = used_and_limit(self.cgroup)
        if used < self.target * limit:
            # Filled, not just reserved: untouched pages are not resident.
            self.steps.append(bytearray(b"\x01") * STEP)
        elif not self.holding:
            self.holding = True
            log("web", f"holding at {used / 2**20:.2f}MB of a {limit / 2**20:.2f}MB quota")


def main() -> None:
    until = deadline()
    target = float(os.environ.get("MEMORY_TARGET_PCT", "94")) / 100
    listener = listen(wait=0.05)
    heap = Heap(memory_cgroup(), target)
    log("web", f"listening; growing to {target:.0%} of the quota")
    serve(listener, until, heap.turn)


if __name__ == "__main__":
    main()
