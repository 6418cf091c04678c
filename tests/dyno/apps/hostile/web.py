"""A web process with a worker whose name is hostile: not UTF-8, with a newline, ")", ",", ":",
a backslash, a quote, "=" and a space (HOSTILE_COMM_HEX, set by the test).

The worker names itself with prctl(PR_SET_NAME), then starts threads and forks children it
never waits for, so it leads every culprit list the agent prints. Everything stops by itself
after APP_SECONDS (default 600).
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time

PR_SET_NAME = 15  # <linux/prctl.h>


def log(who: str, message: str) -> None:
    print(f"{who}[{os.getpid()}]: {message}", flush=True)


def work(name: bytes, threads: int, zombies: int, deadline: float) -> None:
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
    done.wait(max(0.0, deadline - time.monotonic()))
    os._exit(0)


def main() -> None:
    deadline = time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(0.2)
    log("web", f"listening on 127.0.0.1:{os.environ['PORT']}")
    if os.fork() == 0:
        listener.close()
        work(bytes.fromhex(os.environ["HOSTILE_COMM_HEX"]), 3, 2, deadline)
    while time.monotonic() < deadline:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


if __name__ == "__main__":
    main()
