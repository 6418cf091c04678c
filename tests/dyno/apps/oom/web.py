"""A web process whose job worker allocates without end until the kernel's OOM killer kills
it at the dyno's memory limit, as an image resize of a huge upload does.

The worker (comm ``job_worker``) grows HOG_MB_PER_S megabytes a second. Its oom_score_adj
is 1000, so it is the one the kernel kills, however the rest of the dyno's memory is spread;
the web process logs how it ended and keeps serving.
"""

from __future__ import annotations

import os
import signal
import socket
import time

MB = 1024 * 1024
STEPS_PER_S = 10


def hog(step: int) -> None:
    with open("/proc/self/comm", "w") as comm:
        comm.write("job_worker")
    with open("/proc/self/oom_score_adj", "w") as score:
        score.write("1000")
    held = []
    start = time.monotonic()
    for tick in range(10**9):
        held.append(bytearray(b"\x01") * step)
        time.sleep(max(0.0, start + (tick + 1) / STEPS_PER_S - time.monotonic()))


def main() -> None:
    deadline = time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))
    step = int(float(os.environ.get("HOG_MB_PER_S", "40")) * MB / STEPS_PER_S)
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(0.2)
    time.sleep(float(os.environ.get("HOG_AFTER_S", "3")))  # let the agent see a calm dyno
    worker = os.fork()
    if worker == 0:
        listener.close()
        hog(step)
        os._exit(0)
    print(f"web[{os.getpid()}]: job_worker started pid={worker}", flush=True)
    reaped = False
    while time.monotonic() < deadline:
        if not reaped:
            pid, status = os.waitpid(worker, os.WNOHANG)
            if pid:
                reaped = True
                how = (
                    f"killed by signal {os.WTERMSIG(status)}"
                    if os.WIFSIGNALED(status)
                    else f"exited {os.WEXITSTATUS(status)}"
                )
                print(f"web[{os.getpid()}]: job_worker {worker} {how}", flush=True)
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    if not reaped:
        os.kill(worker, signal.SIGKILL)
        os.waitpid(worker, 0)


if __name__ == "__main__":
    main()
