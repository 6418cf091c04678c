"""A web process that never reaps its children and takes its time to shut down.

It forks one child that exits at once and is never waited for (so the process is visibly a
parent that does not reap: its child stays a zombie), and it ignores SIGTERM, like an app
that finishes its requests first. Anything that ends up as its child and exits stays a
zombie; the platform's SIGKILL after the grace period ends it.
"""

from __future__ import annotations

import os
import signal
import socket
import time


def main() -> None:
    deadline = time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))
    signal.signal(
        signal.SIGTERM, lambda *_: print(f"web[{os.getpid()}]: SIGTERM ignored", flush=True)
    )
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(0.2)
    child = os.fork()
    if child == 0:
        os._exit(0)
    print(f"web[{os.getpid()}]: listening; child {child} left unreaped", flush=True)
    while time.monotonic() < deadline:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


if __name__ == "__main__":
    main()
