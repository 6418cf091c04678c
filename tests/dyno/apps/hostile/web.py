"""A web process with a worker whose name is hostile: not UTF-8, with a newline, ")", ",", ":",
a backslash, a quote, "=" and a space (HOSTILE_COMM_HEX, set by the test).

The worker names itself with prctl(PR_SET_NAME), then starts threads and forks children it
never waits for, so it leads every culprit list the agent prints. Everything stops by itself
after APP_SECONDS (default 600).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from typing import NoReturn

from serving import log, web_with_worker

PR_SET_NAME = 15  # <linux/prctl.h>


def work(name: bytes, threads: int, zombies: int, until: float) -> NoReturn:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
        log("worker", f"prctl failed: errno {ctypes.get_errno()}")
        os._exit(1)
    done = threading.Event()
    for _ in range(threads):
        threading.Thread(target=done.wait, daemon=True).start()
    for _ in range(zombies):
        if os.fork() == 0:
            os._exit(0)
    log("worker", f"started pid={os.getpid()}")
    done.wait(max(0.0, until - time.monotonic()))
    os._exit(0)


def main() -> None:
    name = bytes.fromhex(os.environ["HOSTILE_COMM_HEX"])
    web_with_worker(lambda until: work(name, 3, 2, until))


if __name__ == "__main__":
    main()
