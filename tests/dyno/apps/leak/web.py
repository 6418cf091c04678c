"""A web process that leaks memory at a steady rate, as a cache without a bound does.

It grows LEAK_MB_PER_S megabytes a second (on a fixed schedule, so the rate holds however
the machine is loaded) until the dyno's memory cgroup holds 95% of its limit, then holds
there: the agent's memory_growing warning must come well before, with an ETA.
"""

from __future__ import annotations

import os
import time

from serving import MB, deadline, listen, log, memory_cgroup, name, serve, used_and_limit

STEPS_PER_S = 10


def main() -> None:
    until = deadline()
    step = int(float(os.environ.get("LEAK_MB_PER_S", "8")) * MB / STEPS_PER_S)
    name("leaky_web")
    listener = listen(wait=0.01)
    cgroup = memory_cgroup()
    log("leaky_web", f"leaking {step * STEPS_PER_S / MB:g} MB/s")
    leaked = []
    start = time.monotonic()
    holding = False
    tick = 0

    def leak() -> None:
        # On a fixed schedule, so the rate holds however the machine is loaded.
        nonlocal tick, holding
        if time.monotonic() < start + tick / STEPS_PER_S:
            return
        tick += 1
        used, limit = used_and_limit(cgroup)
        if used < 0.95 * limit:
            leaked.append(bytearray(b"\x01") * step)
        elif not holding:
            holding = True
            log("leaky_web", f"holding at {used / MB:.2f}MB")

    serve(listener, until, each_turn=leak)


if __name__ == "__main__":
    main()
