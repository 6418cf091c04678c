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
import socket
import time


def log(who: str, message: str) -> None:
    # A plain write: under the task limit nothing here may need a new thread or process.
    print(f"{who}[{os.getpid()}]: {message}", flush=True)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def leak(rate: float, give_up_after: float) -> None:
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
    deadline = time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))
    rate = float(os.environ.get("ZOMBIE_RATE", "8"))
    give_up_after = float(os.environ.get("ZOMBIE_GIVE_UP", "5"))
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(0.2)
    log("web", f"listening on 127.0.0.1:{os.environ['PORT']}")
    worker = os.fork()
    if worker == 0:
        listener.close()
        leak(rate, give_up_after)
    while time.monotonic() < deadline:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            pass
        else:
            with connection:
                connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        if worker and os.waitpid(worker, os.WNOHANG)[0] == worker:
            log("web", "worker exited; serving on")
            worker = 0


if __name__ == "__main__":
    main()
