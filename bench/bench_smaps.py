"""What reading one process's smaps_rollup costs, by how much memory the process maps.

    python3 bench/bench_smaps.py [--sizes 10,100,500,1000] [--reads 20]

For each size, a child fills that many MB of its heap (written, so resident) and waits; this
script then reads its /proc/<pid>/smaps_rollup with one open and one read, as the agent does,
and prints the median CPU time of a read (CLOCK_PROCESS_CPUTIME_ID: the kernel's page-table
walk is charged to the reader) and what that is per MB. A /proc/<pid>/stat read of the same
process is timed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = (
    "import sys; held = bytearray(b'\\x01') * (int(sys.argv[1]) << 20); "
    "print('ready', flush=True); sys.stdin.read()"
)


def cpu_per_read(path: str, reads: int) -> float:
    """Median CPU seconds of one open + read + close of ``path``."""
    times = []
    for _ in range(reads):
        start = time.process_time()
        fd = os.open(path, os.O_RDONLY)
        try:
            os.read(fd, 4096)
        finally:
            os.close(fd)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500,1000")
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    print(f"# One smaps_rollup read ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})\n")
    print("| process holds MB | smaps_rollup ms | µs per MB | stat ms |")
    print("|---:|---:|---:|---:|")
    for size in (int(text) for text in args.sizes.split(",")):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(size)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            child.stdout.readline()
            rollup = cpu_per_read(f"/proc/{child.pid}/smaps_rollup", args.reads)
            stat = cpu_per_read(f"/proc/{child.pid}/stat", args.reads)
        finally:
            child.stdin.close()
            child.wait()
        print(f"| {size} | {rollup * 1e3:.2f} | {rollup * 1e6 / size:.1f} | {stat * 1e3:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
