"""An endpoint's answer can cost the agent a few kilobytes, never the dyno's memory.

The agent runs in its own interpreter, pushing a few samples to a receiver on 127.0.0.1, and
reports its peak memory (VmHWM) when it is done: once against an endpoint that answers
politely (the push-on baseline), once against each hostile answer. A hostile answer may fail
the push; it may not raise the peak by more than a couple of megabytes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import zlib

import pytest
from push_servers import Receiver, Reply

from support.paths import AGENT

# Peak memory a hostile answer may add over the polite baseline, in kB.
ALLOWED_GROWTH_KB = 2 * 1024

# The agent's own loop (main) pushing 3 samples at a 2 s interval, then its VmHWM and lines.
RUN_AGENT = """
import io, json, os, sys
from dynostat.cli import main
read_end, write_end = os.pipe()
status = main(["--interval", "0.5", "--count", "3"], env={"DYNOSTAT_URL": sys.argv[1]},
              stdout_fd=write_end)
os.close(write_end)
lines = os.read(read_end, 1 << 20).decode()
with open("/proc/self/status") as status_file:
    hwm = next(int(line.split()[1]) for line in status_file if line.startswith("VmHWM:"))
print(json.dumps({"status": status, "vm_hwm_kb": hwm, "lines": lines.splitlines()}))
"""


def gzip_bomb(inflated_bytes: int, layers: int) -> bytes:
    """``inflated_bytes`` of zeros gzipped ``layers`` times: a few kB on the wire."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as compressor:
        chunk = bytes(1 << 20)
        for _ in range(inflated_bytes >> 20):
            compressor.write(chunk)
    data = buffer.getvalue()
    for _ in range(layers - 1):
        data = gzip.compress(data, compresslevel=9)
    return data


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(1 << 30, layers=2)  # 1 GB of zeros in about 4 kB


def run_agent_against(reply: Reply) -> dict:
    receiver = Receiver()
    receiver.default = reply
    try:
        result = subprocess.run(
            [sys.executable, "-c", RUN_AGENT, receiver.url + "/v1/metrics"],
            env={**os.environ, "PYTHONPATH": str(AGENT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        receiver.stop()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    outcome = json.loads(result.stdout)
    outcome["requests"] = receiver.requests
    return outcome


@pytest.fixture(scope="module")
def baseline() -> dict:
    return run_agent_against(Reply(200, body=b"{}"))


def hostile_replies(bomb: bytes) -> dict[str, Reply]:
    deflated = zlib.compress(bomb[:0] + bytes(1 << 28), 9)
    return {
        "gzip, gzip": Reply(200, headers={"Content-Encoding": "gzip, gzip"}, body=bomb),
        "gzip on an error": Reply(400, headers={"Content-Encoding": "gzip"}, body=bomb),
        "deflate": Reply(200, headers={"Content-Encoding": "deflate"}, body=deflated),
        "64 MB plain body": Reply(200, body=b"{" + b" " * (64 << 20) + b"}"),
        # The head itself without end: many header lines, or one header line that never ends.
        "64 MB of header lines": Reply(garbage=b"HTTP/1.1 200 OK\r\n" + HEADER_LINE * (64 << 10)),
        "one 64 MB header line": Reply(garbage=b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (64 << 20)),
    }


HEADER_LINE = b"X-Pad: " + b"a" * 1014 + b"\r\n"  # 1 kB


@pytest.mark.parametrize(
    "kind",
    [
        "gzip, gzip",
        "gzip on an error",
        "deflate",
        "64 MB plain body",
        "64 MB of header lines",
        "one 64 MB header line",
    ],
)
def test_a_hostile_answer_leaves_the_agents_peak_memory_where_a_polite_one_does(
    kind, bomb, baseline
):
    outcome = run_agent_against(hostile_replies(bomb)[kind])

    assert outcome["status"] == 0
    assert len([line for line in outcome["lines"] if "sample#dynostat.tasks=" in line]) == 3
    assert outcome["vm_hwm_kb"] - baseline["vm_hwm_kb"] <= ALLOWED_GROWTH_KB, (
        outcome["vm_hwm_kb"],
        baseline["vm_hwm_kb"],
    )
    # Asked for an answer it can read as is, and said it would not decompress one.
    assert all(r.headers.get("Accept-Encoding") == "identity" for r in outcome["requests"])


def test_the_baseline_pushes_every_sample_without_an_error(baseline):
    assert baseline["status"] == 0
    assert len(baseline["requests"]) == 3
    assert not [line for line in baseline["lines"] if "at=error" in line]
