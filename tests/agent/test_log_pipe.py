"""The real agent on a real log pipe that stalls, or that another process made non-blocking.

The agent runs as on a dyno, its stdout a pipe the test reads (or stops reading), sampling a
captured dyno tree so the lines are the same size every tick.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time

import pytest

from support import readme_decoder
from support.agent import start_agent
from support.paths import FIXTURES
from support.processes import stop

TREE = FIXTURES / "captured-dyno-like"
TREE_ARGS = ["--proc-root", str(TREE / "proc"), "--cgroup-root", str(TREE / "cgroup")]


@pytest.fixture
def pipe():
    """(read end, write end) of a log pipe that holds one page, closed after the test."""
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 4096)
    try:
        yield read_fd, write_fd
    finally:
        os.close(write_fd)
        os.close(read_fd)


@pytest.fixture
def agent_on(pipe):
    """agent_on(*flags) starts the agent on the captured tree, writing to the pipe; it is
    stopped after the test if it still runs."""
    agents: list[subprocess.Popen] = []

    def start(*flags: str) -> subprocess.Popen:
        agents.append(start_agent([*TREE_ARGS, *flags], stdout=pipe[1], stderr=None))
        return agents[-1]

    yield start
    for agent in agents:
        stop(agent)


def read_for(read_fd: int, seconds: float) -> bytes:
    """Everything that arrives on the pipe within ``seconds``, read as it comes."""
    os.set_blocking(read_fd, False)
    chunks = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = os.read(read_fd, 65536)
        except BlockingIOError:
            time.sleep(0.005)
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.set_blocking(read_fd, True)
    return b"".join(chunks)


def fill(write_fd: int) -> None:
    was_blocking = os.get_blocking(write_fd)
    os.set_blocking(write_fd, False)
    try:
        while True:
            os.write(write_fd, b"#" * 4095 + b"\n")
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(write_fd, was_blocking)


def stop_and_time(agent: subprocess.Popen) -> float:
    """Stop the agent (SIGTERM); how long it took to exit."""
    started = time.monotonic()
    stop(agent, timeout=10)
    return time.monotonic() - started


def stop_while_reading(agent: subprocess.Popen, read_fd: int) -> tuple[float, bytes]:
    """SIGTERM the agent and keep reading its pipe; (seconds it took to exit, what it wrote)."""
    started = time.monotonic()
    agent.terminate()
    data = bytearray()
    while agent.poll() is None and time.monotonic() - started < 10:
        data.extend(read_for(read_fd, 0.01))
    exited = time.monotonic() - started
    data.extend(read_for(read_fd, 0.2))
    return exited, bytes(data)


def agent_lines(data: bytes) -> list[str]:
    return [line for line in data.decode().splitlines() if not line.startswith("#")]


def test_a_stalled_log_reader_delays_nothing_and_the_gap_is_reported(pipe, agent_on):
    read_fd, write_fd = pipe
    agent = agent_on("--interval", "0.2")
    first = read_for(read_fd, 0.5)
    fill(write_fd)  # the reader stalls: the pipe is full for the next two seconds
    time.sleep(2.0)
    os.read(read_fd, 4096)  # it comes back and reads on
    later = read_for(read_fd, 1.0)
    stop_seconds, last = stop_while_reading(agent, read_fd)
    assert agent.returncode == 0
    assert stop_seconds < 1.0
    assert any("sample#dynostat.tasks=" in line for line in agent_lines(first))
    [report] = [line for line in agent_lines(later) if "event=log_backpressure" in line]
    fields = readme_decoder.fields(report)
    # About ten ticks of four lines could not be written in two seconds: each was counted,
    # none held up the schedule (no sample was skipped).
    assert int(fields["dropped_lines"]) >= 20, report
    assert report.endswith(" skipped_samples=0")
    assert any("sample#dynostat.tasks=" in line for line in agent_lines(last))


def test_sigterm_ends_the_agent_within_a_second_while_the_reader_stays_stalled(pipe, agent_on):
    read_fd, write_fd = pipe
    agent = agent_on("--interval", "5")
    read_for(read_fd, 0.5)
    fill(write_fd)
    time.sleep(0.2)
    stop_seconds = stop_and_time(agent)
    assert agent.returncode == 0
    assert stop_seconds < 1.0


def test_a_pipe_made_non_blocking_by_another_process_loses_no_sample(pipe, agent_on):
    read_fd, write_fd = pipe
    # What Node does to its stdio: O_NONBLOCK on the pipe's shared file description.
    os.set_blocking(write_fd, False)
    agent = agent_on("--interval", "0.25", "--count", "20")
    received = bytearray()
    # Every tenth of a second the app writes a burst that fills the pipe and the log reader
    # takes 30 ms to catch up: many of the agent's writes meet a full pipe (EAGAIN at once),
    # none for longer than an eighth of a tick.
    end = time.monotonic() + 20
    while agent.poll() is None and time.monotonic() < end:
        fill(write_fd)
        time.sleep(0.03)
        received.extend(read_for(read_fd, 0.07))
    received.extend(read_for(read_fd, 0.3))
    lines = agent_lines(bytes(received))
    assert agent.returncode == 0
    assert len([line for line in lines if "sample#dynostat.tasks=" in line]) == 20
    # Every line arrived whole: each is one of the agent's own lines from its first byte on.
    assert all(line.startswith("source=web.1 ") for line in lines)
    assert not [line for line in lines if "log_backpressure" in line]
