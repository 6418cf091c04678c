"""A web process whose memory grows to near the dyno's quota and stays there.

It reads its own memory cgroup (the dyno's), grows its heap in small steps until the
cgroup's rss + cache reach MEMORY_TARGET_PCT (default 94) of the limit, then holds: close
enough to the quota for the agent's warning, short of the OOM killer.
"""

from __future__ import annotations

import os
import socket
import time

STEP = 1024 * 1024


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
    target = float(os.environ.get("MEMORY_TARGET_PCT", "94")) / 100
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    listener.settimeout(0.05)
    cgroup = memory_cgroup()
    print(f"web[{os.getpid()}]: listening; growing to {target:.0%} of the quota", flush=True)
    heap = []
    holding = False
    while time.monotonic() < deadline:
        used, limit = used_and_limit(cgroup)
        if used < target * limit:
            # Filled, not just reserved: untouched pages are not resident.
            heap.append(bytearray(b"\x01") * STEP)
        elif not holding:
            holding = True
            print(
                f"web[{os.getpid()}]: holding at {used / 2**20:.2f}MB of a "
                f"{limit / 2**20:.2f}MB quota",
                flush=True,
            )
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


if __name__ == "__main__":
    main()
