"""The incident: a web process whose worker forks short-lived children and never waits.

The web process binds $PORT and starts one worker, `leaky_worker`, the stand-in for a gem
that spawns helpers and forgets them. The worker forks ZOMBIE_RATE children a second (each
exits at once) and never calls wait(), so every child stays a zombie and holds one of the
dyno's tasks. When fork fails with EAGAIN (the task limit) it logs the failure with a
timestamp and keeps trying slowly; after ZOMBIE_GIVE_UP seconds of failures it exits, its
zombies pass to the dyno's init, which reaps them, and the dyno recovers.

The web process itself waits for its worker, as a well-behaved parent does.
"""

from __future__ import annotations

import datetime
import errno
import os
import time
from typing import NoReturn

from serving import log, web_with_worker


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def leak(rate: float, give_up_after: float) -> NoReturn:
    with open("/proc/self/comm", "w") as comm:
        comm.write("leaky_worker")
    log("leaky_worker", f"started pid={os.getpid()}, forking {rate:g}/s and never waiting")
    first_failure = None
    forked = 0
    while True:
        try:
            pid = os.fork()
        except OSError as error:
            if error.errno != errno.EAGAIN:
                raise
            if first_failure is None:
                first_failure = time.monotonic()
            log(
                "leaky_worker",
                f"fork failed: EAGAIN (Resource temporarily unavailable) "
                f"at {now()} after {forked} children",
            )
            if time.monotonic() - first_failure >= give_up_after:
                log("leaky_worker", "giving up: exiting, my zombies go to the dyno's init")
                os._exit(1)
            time.sleep(0.5)
            continue
        if pid == 0:
            os._exit(0)
        forked += 1
        time.sleep(1 / rate)


def main() -> None:
    rate = float(os.environ.get("ZOMBIE_RATE", "8"))
    give_up_after = float(os.environ.get("ZOMBIE_GIVE_UP", "5"))
    web_with_worker(lambda until: leak(rate, give_up_after))


if __name__ == "__main__":
    main()
