"""A web process with a worker, `thread_leaker`, whose threads climb and never finish.

The worker starts THREAD_RATE threads a second that sleep forever, up to THREAD_MAX, then
holds them: the kind of leak a pool without a bound causes. It never reaches the task
limit; the point is that the agent names the process before it would.
"""

from __future__ import annotations

import os
import socket
import threading
import time


def log(who: str, message: str) -> None:
    print(f"{who}[{os.getpid()}]: {message}", flush=True)


def leak(rate: float, most: int, deadline: float) -> None:
    with open("/proc/self/comm", "w") as comm:
        comm.write("thread_leaker")
    log("thread_leaker", f"started pid={os.getpid()}, {rate:g} threads/s up to {most}")
    done = threading.Event()
    remaining = max(0.0, deadline - time.monotonic())
    for count in range(1, most + 1):
        threading.Thread(target=done.wait, args=(remaining,), daemon=True).start()
        if count % 10 == 0:
            log("thread_leaker", f"{count} threads")
        time.sleep(1 / rate)
    log("thread_leaker", f"holding {most} threads")
    done.wait(max(0.0, deadline - time.monotonic()))
    os._exit(0)


def main() -> None:
    deadline = time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(0.2)
    log("web", f"listening on 127.0.0.1:{os.environ['PORT']}")
    worker = os.fork()
    if worker == 0:
        listener.close()
        rate = float(os.environ.get("THREAD_RATE", "5"))
        leak(rate, int(os.environ.get("THREAD_MAX", "40")), deadline)
    while time.monotonic() < deadline:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


if __name__ == "__main__":
    main()
