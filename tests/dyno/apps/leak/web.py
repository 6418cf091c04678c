"""A web process that leaks memory at a steady rate, as a cache without a bound does.

It grows LEAK_MB_PER_S megabytes a second (on a fixed schedule, so the rate holds however
the machine is loaded) until the dyno's memory cgroup holds 95% of its limit, then holds
there: the agent's memory_growing warning must come well before, with an ETA.
"""

from __future__ import annotations

import os
import socket
import time

MB = 1024 * 1024
STEPS_PER_S = 10


def memory_cgroup() -> str:
    with open("/proc/self/cgroup", "rb") as cgroups:
        for line in cgroups:
            _, controllers, path = os.fsdecode(line.rstrip(b"\n")).split(":", 2)
            if "memory" in controllers.split(","):
                return "/sys/fs/cgroup/memory" + path
            if controllers == "":
                unified = "/sys/fs/cgroup" + path
    return unified


def used_and_limit(cgroup: str) -> tuple[int, int]:
    with open(os.path.join(cgroup, "memory.stat")) as stat:
        fields = dict(line.split() for line in stat)
    if "total_rss" in fields:
        used = int(fields["total_rss"]) + int(fields["total_cache"])
        with open(os.path.join(cgroup, "memory.limit_in_bytes")) as limit:
            return used, int(limit.read())
    with open(os.path.join(cgroup, "memory.max")) as limit:
        return int(fields["anon"]) + int(fields["file"]), int(limit.read())


def main() -> None:
    deadline = time.monotonic() + float(os.environ.get("APP_SECONDS", "600"))
    step = int(float(os.environ.get("LEAK_MB_PER_S", "8")) * MB / STEPS_PER_S)
    with open("/proc/self/comm", "w") as comm:
        comm.write("leaky_web")
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.setblocking(False)
    cgroup = memory_cgroup()
    print(f"leaky_web[{os.getpid()}]: leaking {step * STEPS_PER_S / MB:g} MB/s", flush=True)
    leaked = []
    start = time.monotonic()
    holding = False
    for tick in range(10**9):
        if time.monotonic() > deadline:
            break
        used, limit = used_and_limit(cgroup)
        if used < 0.95 * limit:
            leaked.append(bytearray(b"\x01") * step)
        elif not holding:
            holding = True
            print(f"leaky_web[{os.getpid()}]: holding at {used / MB:.2f}MB", flush=True)
        try:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        except BlockingIOError:
            pass
        time.sleep(max(0.0, start + (tick + 1) / STEPS_PER_S - time.monotonic()))


if __name__ == "__main__":
    main()
