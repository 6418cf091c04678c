"""A preforking web server, as puma, unicorn and gunicorn run: the master loads the app, then
forks WEB_CONCURRENCY workers that share the app's pages copy-on-write and serve requests.

The master (comm ``web-master``) fills APP_MB of memory, as loading an app does, then forks
the workers (comm ``web-worker``), which each fill WORKER_MB of their own, as serving
requests does. Every process's RSS counts the app's pages whole; its PSS counts its share.
"""

from __future__ import annotations

import os
import signal
import time

from serving import MB, deadline, listen, log, name, serve


def main() -> None:
    until = deadline()
    workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
    name("web-master")
    app = bytearray(b"\x01") * (int(os.environ.get("APP_MB", "40")) * MB)  # the loaded app
    listener = listen()
    children = []
    for number in range(workers):
        pid = os.fork()
        if pid == 0:
            name("web-worker")
            own = bytearray(b"\x01") * (int(os.environ.get("WORKER_MB", "15")) * MB)
            log("web-worker", f"worker {number} ready, {len(own) // MB} MB of its own")
            serve(listener, until)
            os._exit(0)
        children.append(pid)
    log("web-master", f"{workers} workers forked: {' '.join(map(str, children))}")
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    while time.monotonic() < until and app:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
