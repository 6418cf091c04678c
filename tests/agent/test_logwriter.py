"""The log writer on real descriptors: pipes that stall, pipes someone made non-blocking, other
writers on the same pipe, a closed reader, a full disk."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time

import pytest

from dynostat.logwriter import FINAL_WAIT_S, PIPE_BUF, LineWriter, OutputClosed
from dynostat.output import Formatter

EVENT_LINE = Formatter("web.1", "d-1").event_line


class Stop:
    """What the writer reads of the signal state: whether a stop was requested."""

    requested = False


def make_pipe(non_blocking: bool = False, size: int = 65536):
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, size)
    if non_blocking:
        os.set_blocking(write_fd, False)
    return read_fd, write_fd


def fill(write_fd: int) -> int:
    """Fill a pipe to the brim, without blocking; returns how many bytes it took."""
    was_blocking = os.get_blocking(write_fd)
    os.set_blocking(write_fd, False)
    written = 0
    try:
        while True:
            written += os.write(write_fd, b"x" * 4096)
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(write_fd, was_blocking)
    return written


def drain(read_fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += os.read(read_fd, size - len(data))
    return data


def read_available(read_fd: int) -> bytes:
    os.set_blocking(read_fd, False)
    chunks = []
    try:
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(read_fd, True)
    return b"".join(chunks)


@pytest.fixture
def pipe():
    fds = make_pipe()
    yield fds
    for fd in fds:
        os.close(fd)


def test_each_line_is_written_whole_and_in_order(pipe):
    read_fd, write_fd = pipe
    writer = LineWriter(write_fd, EVENT_LINE)
    assert writer.write(["a=1", "b=\u00e9", "c=3"]) == 3
    assert read_available(read_fd) == "a=1\nb=\u00e9\nc=3\n".encode()


def test_a_stalled_reader_costs_the_lines_not_the_deadline(pipe):
    read_fd, write_fd = pipe
    filled = fill(write_fd)
    writer = LineWriter(write_fd, EVENT_LINE)
    writer.deadline = time.monotonic() + 0.3

    started = time.monotonic()
    written = writer.write(["a=1", "b=2"])

    assert 0.25 <= time.monotonic() - started < 0.6
    assert written == 0
    assert writer.dropped_lines == 2
    # The reader comes back: the next line that gets through says what was lost.
    drain(read_fd, filled)
    writer.count_skipped(1)
    writer.deadline = time.monotonic() + 1
    assert writer.write(["c=3"]) == 1
    assert read_available(read_fd) == (
        b"source=web.1 dyno=d-1 at=warn event=log_backpressure dropped_lines=2"
        b" skipped_samples=1\nc=3\n"
    )
    assert (writer.dropped_lines, writer.skipped_samples) == (0, 0)


def test_the_backpressure_line_is_rate_limited_and_its_counts_carry_over(pipe):
    read_fd, write_fd = pipe
    now = [1000.0]
    writer = LineWriter(write_fd, EVENT_LINE, clock=lambda: now[0])
    writer.deadline = 0.0  # never wait: a full pipe drops at once
    filled = fill(write_fd)
    writer.write(["a=1"])
    drain(read_fd, filled)
    writer.write(["b=2"])  # reports the first drop
    first = read_available(read_fd)
    filled = fill(write_fd)
    writer.write(["c=3", "d=4"])
    drain(read_fd, filled)
    now[0] += 30
    writer.write(["e=5"])  # within the minute: no report yet, the count is kept
    now[0] += 31
    writer.write(["f=6"])
    head = b"source=web.1 dyno=d-1 at=warn event=log_backpressure"
    assert first == head + b" dropped_lines=1 skipped_samples=0\nb=2\n"
    assert read_available(read_fd) == (
        b"e=5\n" + head + b" dropped_lines=2 skipped_samples=0\nf=6\n"
    )


def test_a_pipe_someone_made_non_blocking_loses_no_line_while_the_reader_keeps_up():
    read_fd, write_fd = make_pipe(non_blocking=True, size=4096)
    received = bytearray()

    def slow_reader():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = os.read(read_fd, 997)
            if not chunk:
                return
            received.extend(chunk)
            time.sleep(0.001)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    try:
        writer = LineWriter(write_fd, EVENT_LINE)
        lines = [f"line={index} pad={'p' * 300}" for index in range(400)]
        writer.deadline = time.monotonic() + 10
        assert writer.write(lines) == 400
    finally:
        os.close(write_fd)
        reader.join(timeout=15)
        os.close(read_fd)
    assert received.decode().splitlines() == lines


def test_lines_are_never_torn_by_another_writer_on_the_same_pipe():
    read_fd, write_fd = make_pipe()
    collected = bytearray()

    def read_to_the_end():
        while chunk := os.read(read_fd, 65536):
            collected.extend(chunk)

    reader = threading.Thread(target=read_to_the_end)
    reader.start()
    # Another process writes 4000-byte lines to the same pipe as fast as it can.
    other = subprocess.Popen(
        [sys.executable, "-c",
         "import os\nfor _ in range(300): os.write(1, b'o' * 3999 + b'\\n')"],
        stdout=write_fd,
    )  # fmt: skip
    ours = [f"agent={index} " + "a" * (PIPE_BUF - 20) for index in range(300)]
    try:
        writer = LineWriter(write_fd, EVENT_LINE)
        writer.deadline = time.monotonic() + 30
        assert writer.write(ours) == 300
    finally:
        os.close(write_fd)
        other.wait(timeout=30)
        reader.join(timeout=30)
        os.close(read_fd)
    lines = collected.decode().splitlines()
    assert [line for line in lines if line.startswith("agent=")] == ours
    assert [line for line in lines if not line.startswith("agent=")] == ["o" * 3999] * 300


def test_a_line_longer_than_pipe_buf_is_dropped_not_torn(pipe):
    read_fd, write_fd = pipe
    writer = LineWriter(write_fd, EVENT_LINE)
    assert writer.write(["a=1", "x=" + "y" * PIPE_BUF, "b=2"]) == 1
    assert read_available(read_fd) == b"a=1\n"
    assert writer.dropped_lines == 2


def test_a_stop_request_ends_a_wait_on_a_stalled_reader_within_the_final_wait(pipe):
    _, write_fd = pipe
    fill(write_fd)
    stop = Stop()
    writer = LineWriter(write_fd, EVENT_LINE, stop=stop)
    writer.deadline = time.monotonic() + 20
    timer = threading.Timer(0.2, lambda: setattr(stop, "requested", True))
    timer.start()
    started = time.monotonic()
    writer.write(["a=1"])
    elapsed = time.monotonic() - started
    timer.join()
    assert 0.2 + FINAL_WAIT_S - 0.05 <= elapsed < 0.2 + FINAL_WAIT_S + 0.3


def test_a_closed_reader_or_a_closed_fd_ends_the_agent_quietly():
    read_fd, write_fd = make_pipe()
    os.close(read_fd)
    with pytest.raises(OutputClosed):
        LineWriter(write_fd, EVENT_LINE).write(["a=1"])
    os.close(write_fd)
    with pytest.raises(OutputClosed):
        LineWriter(write_fd, EVENT_LINE).write(["a=1"])


def test_a_full_disk_loses_the_lines_and_says_so_when_it_can():
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        writer = LineWriter(full, EVENT_LINE)
        assert writer.write(["a=1", "b=2"]) == 0
        assert writer.dropped_lines == 2
    finally:
        os.close(full)
