"""A web process whose job worker allocates without end until the kernel's OOM killer kills
it at the dyno's memory limit, as an image resize of a huge upload does.

The worker (comm ``job_worker``) grows HOG_MB_PER_S megabytes a second. Its oom_score_adj
is 1000, so it is the one the kernel kills, however the rest of the dyno's memory is spread;
the web process logs how it ended and keeps serving.
"""

from __future__ import annotations

import os
import signal
import time

from serving import MB, deadline, listen, log, name, serve

STEPS_PER_S = 10


def hog(step: int) -> None:
    name("job_worker")
    with open("/proc/self/oom_score_adj", "w") as score:
        score.write("1000")
    held = []
    start = time.monotonic()
    for tick in range(10**9):
        held.append(bytearray(b"\x01") * step)
        time.sleep(max(0.0, start + (tick + 1) / STEPS_PER_S - time.monotonic()))


def main() -> None:
    until = deadline()
    step = int(float(os.environ.get("HOG_MB_PER_S", "40")) * MB / STEPS_PER_S)
    listener = listen()
    time.sleep(float(os.environ.get("HOG_AFTER_S", "3")))  # let the agent see a calm dyno
    worker = os.fork()
    if worker == 0:
        listener.close()
        hog(step)
        os._exit(0)
    log("web", f"job_worker started pid={worker}")
    reaped = False

    def reap() -> None:
        nonlocal reaped
        if reaped:
            return
        pid, status = os.waitpid(worker, os.WNOHANG)
        if pid:
            reaped = True
            if os.WIFSIGNALED(status):
                how = f"killed by signal {os.WTERMSIG(status)}"
            else:
                how = f"exited {os.WEXITSTATUS(status)}"
            log("web", f"job_worker {worker} {how}")

    serve(listener, until, each_turn=reap)
    if not reaped:
        os.kill(worker, signal.SIGKILL)
        os.waitpid(worker, 0)


if __name__ == "__main__":
    main()
