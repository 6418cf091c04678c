"""What the fixture apps' web processes share; the harness puts it beside each app's own files.

Each app lives at most APP_SECONDS (default 600), so a forgotten dyno never runs forever,
writes its log lines whole and at once, and answers every request on $PORT (on 127.0.0.1
only) with "ok" between the turns of its own work. Most run their misbehaviour in one worker
process the web process forks and, as a well-behaved parent, waits for.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable, NoReturn


def deadline() -> float:
    """The monotonic time at which the app stops by itself."""
    return time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))


MB = 1024 * 1024


def name(comm: str) -> None:
    """Set this process's comm, what the agent names it by."""
    with open("/proc/self/comm", "w") as file:
        file.write(comm)


def memory_cgroup() -> str:
    """The directory of this process's memory cgroup (v1), or of its unified one (v2)."""
    unified = "/sys/fs/cgroup"
    with open("/proc/self/cgroup", "rb") as cgroups:
        for line in cgroups:
            _, controllers, path = os.fsdecode(line.rstrip(b"\n")).split(":", 2)
            if "memory" in controllers.split(","):
                return "/sys/fs/cgroup/memory" + path
            if controllers == "":
                unified = "/sys/fs/cgroup" + path
    return unified


def used_and_limit(cgroup: str) -> tuple[int, int]:
    """The memory cgroup's resident use (rss + cache) and its limit, in bytes."""
    with open(os.path.join(cgroup, "memory.stat")) as stat:
        fields = dict(line.split() for line in stat)
    if "total_rss" in fields:
        used = int(fields["total_rss"]) + int(fields["total_cache"])
        with open(os.path.join(cgroup, "memory.limit_in_bytes")) as limit:
            return used, int(limit.read())
    with open(os.path.join(cgroup, "memory.max")) as limit:
        return int(fields["anon"]) + int(fields["file"]), int(limit.read())


def log(who: str, message: str) -> None:
    # A plain write: under the task limit nothing here may need a new thread or process.
    print(f"{who}[{os.getpid()}]: {message}", flush=True)


def listen(wait: float = 0.2) -> socket.socket:
    """A socket bound to $PORT on 127.0.0.1, whose accept gives up after ``wait`` seconds."""
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(wait)
    return listener


def serve(
    listener: socket.socket, until: float, each_turn: Callable[[], None] = lambda: None
) -> None:
    """Answer requests until ``until``, calling ``each_turn`` before each wait for one."""
    while time.monotonic() < until:
        each_turn()
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


def web_with_worker(work: Callable[[float], NoReturn]) -> None:
    """Listens on $PORT, forks the worker, which runs ``work(until)`` without the listener and
    never returns, then answers requests until ``until``, reaping the worker if it exits."""
    until = deadline()
    listener = listen()
    log("web", f"listening on 127.0.0.1:{os.environ['PORT']}")
    worker = os.fork()
    if worker == 0:
        listener.close()
        work(until)

    def reap_worker() -> None:
        nonlocal worker
        if worker and os.waitpid(worker, os.WNOHANG)[0] == worker:
            log("web", "worker exited; serving on")
            worker = 0

    serve(listener, until, reap_worker)
