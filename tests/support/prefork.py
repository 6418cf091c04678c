"""A preforking server in miniature, for the tests and benchmarks of per-worker memory.

    python3 tests/support/prefork.py PARENT_MB WORKER_MB WORKERS [COMM]

The parent fills PARENT_MB of heap (touched, so resident), then forks WORKERS workers that
share those pages copy-on-write and each fill WORKER_MB of their own, as puma, unicorn or
gunicorn workers do after the app is loaded in the master. The parent prints
``ready <parent pid> <worker pid> ...`` once every worker has filled its memory, and on EOF of
its stdin (or SIGTERM) kills and reaps its workers and exits. COMM names every process (the
parent and its workers share it, as a real server's processes do).

``PreforkServer`` starts one and always stops it, also when the test fails.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

MIB = 1024 * 1024
SCRIPT = os.path.abspath(__file__)


def fill(megabytes: int) -> bytearray:
    """``megabytes`` of heap with every page written, so all of it is resident."""
    return bytearray(b"\x01") * (megabytes * MIB)


def set_comm(comm: bytes) -> None:
    """The process's comm (what /proc/<pid>/stat shows), through prctl(PR_SET_NAME)."""
    with open(f"/proc/{os.getpid()}/comm", "wb") as comm_file:
        comm_file.write(comm)


PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies, however the parent dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # through serve's finally, which kills and reaps the workers


def serve(parent_mb: int, worker_mb: int, workers: int, comm: bytes) -> None:
    signal.signal(signal.SIGTERM, stop)
    set_comm(comm)
    held = fill(parent_mb)  # noqa: F841 - held for the parent's lifetime, shared by workers
    ready_read, ready_write = os.pipe()
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            die_with_parent()
            os.close(ready_read)
            own = fill(worker_mb)  # noqa: F841 - the worker's private memory
            os.write(ready_write, b".")
            os.close(ready_write)
            while True:
                signal.pause()
        children.append(pid)
    os.close(ready_write)
    got = 0
    while got < workers:
        chunk = os.read(ready_read, workers)
        if not chunk:
            break
        got += len(chunk)
    os.close(ready_read)
    print("ready", os.getpid(), *children, flush=True)
    try:
        sys.stdin.buffer.read()  # until the caller closes our stdin
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        for pid in children:
            os.waitpid(pid, 0)


class PreforkServer:
    """``with PreforkServer(parent_mb, worker_mb, workers) as server:`` — ``server.parent`` and
    ``server.workers`` are the pids; the workers' memory is resident when the block starts."""

    def __init__(
        self,
        parent_mb: int,
        worker_mb: int,
        workers: int,
        *,
        comm: str = "prefork",
        python: str = sys.executable,
        preexec_fn=None,
    ) -> None:
        self.command = [python, SCRIPT, str(parent_mb), str(worker_mb), str(workers), comm]
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen | None = None
        self.parent = 0
        self.workers: list[int] = []

    def __enter__(self) -> PreforkServer:
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=self.preexec_fn,  # noqa: PLW1509 - only joins a cgroup, before exec
        )
        line = self.process.stdout.readline().split()
        if not line or line[0] != b"ready":
            self.__exit__()
            raise RuntimeError(f"the prefork server did not start: {line!r}")
        self.parent, *self.workers = (int(pid) for pid in line[1:])
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self.process
        if process is None:
            return
        process.stdin.close()  # EOF: the parent kills and reaps its workers, then exits
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if process.poll() is None:
            process.kill()  # its workers die with it (PR_SET_PDEATHSIG)
            process.wait()
        process.stdout.close()
        self.process = None


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) not in (3, 4):
        raise SystemExit(__doc__.split("\n\n")[1])
    name = arguments[3] if len(arguments) == 4 else "prefork"
    serve(int(arguments[0]), int(arguments[1]), int(arguments[2]), os.fsencode(name))
