"""A preforking web server, as puma, unicorn and gunicorn run: the master loads the app, then
forks WEB_CONCURRENCY workers that share the app's pages copy-on-write and serve requests.

The master (comm ``web-master``) fills APP_MB of memory, as loading an app does, then forks
the workers (comm ``web-worker``), which each fill WORKER_MB of their own, as serving
requests does. Every process's RSS counts the app's pages whole; its PSS counts its share.
"""

from __future__ import annotations

import os
import signal
import socket
import time

MB = 1024 * 1024


def log(who: str, message: str) -> None:
    print(f"{who}[{os.getpid()}]: {message}", flush=True)


def name(comm: str) -> None:
    with open("/proc/self/comm", "w") as file:
        file.write(comm)


def serve(listener: socket.socket, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


def main() -> None:
    deadline = time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))
    workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
    name("web-master")
    app = bytearray(b"\x01") * (int(os.environ.get("APP_MB", "40")) * MB)  # the loaded app
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(0.2)
    children = []
    for number in range(workers):
        pid = os.fork()
        if pid == 0:
            name("web-worker")
            own = bytearray(b"\x01") * (int(os.environ.get("WORKER_MB", "15")) * MB)
            log("web-worker", f"worker {number} ready, {len(own) // MB} MB of its own")
            serve(listener, deadline)
            os._exit(0)
        children.append(pid)
    log("web-master", f"{workers} workers forked: {' '.join(map(str, children))}")
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    while time.monotonic() < deadline and app:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
