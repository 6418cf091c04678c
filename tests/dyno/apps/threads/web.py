"""A web process with a worker, `thread_leaker`, whose threads climb and never finish.

The worker starts THREAD_RATE threads a second that sleep forever, up to THREAD_MAX, then
holds them: the kind of leak a pool without a bound causes. It never reaches the task
limit; the point is that the agent names the process before it would.
"""

from __future__ import annotations

import os
import threading
import time
from typing import NoReturn

from serving import log, web_with_worker


def leak(rate: float, most: int, until: float) -> NoReturn:
    with open("/proc/self/comm", "w") as comm:
        comm.write("thread_leaker")
    log("thread_leaker", f"started pid={os.getpid()}, {rate:g} threads/s up to {most}")
    done = threading.Event()
    remaining = max(0.0, until - time.monotonic())
    for count in range(1, most + 1):
        threading.Thread(target=done.wait, args=(remaining,), daemon=True).start()
        if count % 10 == 0:
            log("thread_leaker", f"{count} threads")
        time.sleep(1 / rate)
    log("thread_leaker", f"holding {most} threads")
    done.wait(max(0.0, until - time.monotonic()))
    os._exit(0)


def main() -> None:
    rate = float(os.environ.get("THREAD_RATE", "5"))
    most = int(os.environ.get("THREAD_MAX", "40"))
    web_with_worker(lambda until: leak(rate, most, until))


if __name__ == "__main__":
    main()
