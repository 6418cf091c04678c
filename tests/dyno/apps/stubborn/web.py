"""A web process that never reaps its children and takes its time to shut down.

It forks one child that exits at once and is never waited for (so the process is visibly a
parent that does not reap: its child stays a zombie), and it ignores SIGTERM, like an app
that finishes its requests first. Anything that ends up as its child and exits stays a
zombie; the platform's SIGKILL after the grace period ends it.
"""

from __future__ import annotations

import os
import signal

from serving import deadline, listen, log, serve


def main() -> None:
    until = deadline()
    signal.signal(signal.SIGTERM, lambda *_: log("web", "SIGTERM ignored"))
    listener = listen()
    child = os.fork()
    if child == 0:
        os._exit(0)
    log("web", f"listening; child {child} left unreaped")
    serve(listener, until)


if __name__ == "__main__":
    main()
