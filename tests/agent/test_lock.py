"""One agent per dyno, whatever the lock file is: writable, read-only, another user's, or
absent on a read-only file system.

The races start real agents at once (``--lock``, as the launcher does) and count the ones left
running: exactly one, never zero. Read-only file systems are real read-only bind mounts in a
mount namespace of their own, and "another user" is the real ``nobody``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dynostat import lock
from support.agent import agent_env, run_code
from support.paths import AGENT_SCRIPT
from support.processes import stop

RACERS = 8

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: another user, read-only bind mounts"
)


# -- the lock itself, in this process ----------------------------------------------------------


def test_a_second_take_of_the_same_lock_is_refused_until_the_first_lets_go(tmp_path):
    path = str(tmp_path / "agent.lock")
    first = lock.take(path)
    assert first is not None
    assert (first.socket, first.fd is not None) == (None, True)
    assert lock.take(path) is None
    first.release()
    again = lock.take(path)
    assert again is not None
    again.release()


def test_another_spelling_of_the_same_path_is_the_same_lock(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "run")
    held = lock.take(str(tmp_path / "run" / "agent.lock"))
    try:
        assert lock.socket_name(str(tmp_path / "link" / "agent.lock")) == lock.socket_name(
            str(tmp_path / "run" / "x" / ".." / "agent.lock")
        )
        assert lock.take(str(tmp_path / "link" / "agent.lock")) is None
        assert lock.take(str(tmp_path / "other.lock")) is not None
    finally:
        held.release()


def test_the_socket_name_fits_an_abstract_address_and_names_the_mount_namespace(tmp_path):
    name = lock.socket_name(str(tmp_path / ("x" * 4000)))
    assert name.startswith(b"\0dynostat-lock:")
    assert len(name) <= 107
    namespace = os.readlink("/proc/self/ns/mnt").partition("[")[2].rstrip("]")
    assert name.split(b":")[1] == namespace.encode()
    assert name.split(b":")[2] == os.uname().nodename.encode()


def test_a_lock_file_held_by_any_process_keeps_the_lock(tmp_path):
    path = tmp_path / "agent.lock"
    with open(path, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert lock.take(str(path)) is None
    held = lock.take(str(path))
    assert held is not None
    held.release()


def test_without_a_directory_for_the_file_the_socket_alone_holds_the_lock(tmp_path):
    path = str(tmp_path / "no" / "such" / "dir" / "agent.lock")
    held = lock.take(path)
    try:
        assert held is not None
        assert (held.socket is not None, held.fd) == (True, None)
        assert lock.take(path) is None
    finally:
        held.release()


def test_a_fifo_at_the_path_is_locked_without_waiting_for_a_writer(tmp_path):
    path = tmp_path / "agent.lock"
    os.mkfifo(path)
    os.chmod(path, 0o444)
    # In a child: an open that blocked would hang this test, not fail it.
    code = "import sys; from dynostat import lock; print(lock.take(sys.argv[1]) is not None)"
    result = run_code(code, str(path), text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n", "")


def test_when_neither_the_file_nor_the_socket_can_be_used_take_says_why(tmp_path):
    def no_sockets(name):
        raise OSError(errno.EPERM, "Operation not permitted")

    with pytest.raises(OSError) as raised:
        lock.take(str(tmp_path / "missing" / "agent.lock"), bind=no_sockets)
    assert str(raised.value) == (
        "no lock file (No such file or directory) and no lock socket (Operation not permitted)"
    )


def test_a_usable_lock_file_never_needs_a_socket(tmp_path):
    def no_sockets(name):
        raise AssertionError("the socket was asked for")

    path = str(tmp_path / "agent.lock")
    held = lock.take(path, bind=no_sockets)
    try:
        assert (held.socket, held.fd is not None) == (None, True)
        assert lock.take(path, bind=no_sockets) is None
    finally:
        held.release()


def test_an_agent_with_a_usable_lock_file_loads_nothing_for_the_fallback(tmp_path):
    # The socket module costs the agent 0.1 to 0.3 MB for the life of the dyno, binascii a
    # shared library on some Pythons.
    code = (
        "import sys\n"
        "from dynostat import cli\n"
        "held = cli.lock.take(sys.argv[1])\n"
        "print(held is not None, sorted(m for m in sys.modules if 'socket' in m or 'ascii' in m))\n"
    )
    result = run_code(code, str(tmp_path / "agent.lock"), flags=["-S"], text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "True []\n", "")


# -- races of real agents ----------------------------------------------------------------------


class Race:
    """RACERS real agents started at once on one lock; every one is gone when it ends."""

    def __init__(self, lock_path: str, prefix: list[str], user: str | None) -> None:
        self.lock_path = lock_path
        self.prefix = prefix
        self.user = user
        self.agents: list[subprocess.Popen] = []

    def command(self) -> list[str]:
        command = [*self.prefix]
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            command += [
                "setpriv",
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--clear-groups",
                "--",
            ]
        return [
            *command,
            sys.executable,
            "-S",
            str(AGENT_SCRIPT),
            "--interval",
            "30",
            "--lock",
            self.lock_path,
        ]

    def run(self, count: int = RACERS) -> subprocess.Popen:
        """Start ``count`` agents at once; return the one left running after the others quit."""
        env = agent_env({"PYTHONDONTWRITEBYTECODE": "1"})
        command = self.command()
        for _ in range(count):
            self.agents.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        # Every agent that misses the lock exits at once; wait for all but one to have gone.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            quitters = [agent for agent in self.agents if agent.poll() is not None]
            if len(quitters) >= count - 1:
                break
            time.sleep(0.05)
        running = [agent for agent in self.agents if agent not in quitters]
        for agent in quitters:
            out, err = agent.communicate(timeout=5)
            assert (agent.returncode, out, err) == (0, b"", b""), "an agent that lost the race"
        assert len(running) == 1, f"{len(running)} agents kept running, not 1"
        # The one left is no loser that is merely slow to go: it holds the lock and samples.
        readable, _, _ = select.select([running[0].stdout], [], [], 10)
        assert readable, "the agent left running printed nothing"
        assert running[0].stdout.readline().startswith(b"source=web.1 "), "not a sample line"
        return running[0]

    def stop(self) -> list[str]:
        """SIGTERM to every agent still running; the lines of the last one stopped."""
        lines: list[str] = []
        for agent in self.agents:
            if agent.poll() is None:
                agent.terminate()
                out, _ = agent.communicate(timeout=5)
                lines = out.decode().splitlines()
        for agent in self.agents:
            stop(agent)
        return lines


@pytest.fixture
def race():
    races: list[Race] = []

    def start(lock_path, *, prefix=(), user=None) -> Race:
        races.append(Race(str(lock_path), list(prefix), user))
        return races[-1]

    yield start
    for each in races:
        each.stop()


@pytest.fixture
def shared_dir():
    """A directory every user can reach (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="dynostat-lock-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def read_only_namespace(shared_dir):
    """(a mount namespace in which ``shared_dir/ro`` is a read-only bind mount, its nsenter
    prefix). The namespace lives as long as one process of it does: the holder, stopped at
    the end, takes the mount with it."""
    read_only = shared_dir / "ro"
    read_only.mkdir()
    (read_only / "slug.lock").write_text("")
    holder = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            'mount --bind -o ro "$0" "$0" && echo ready && exec sleep 120',
            str(read_only),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "ready\n"
        yield read_only, ["nsenter", f"--target={holder.pid}", "--mount", "--"]
    finally:
        stop(holder)


def sample_lines(agent: subprocess.Popen, race: Race) -> list[str]:
    lines = race.stop()
    assert agent.returncode == 0
    assert any("sample#dynostat.tasks=" in line for line in lines), lines
    assert not any("at=error" in line for line in lines), lines
    return lines


@needs_root
def test_agents_racing_on_a_read_only_lock_file_of_another_user_leave_one(shared_dir, race):
    path = shared_dir / "agent.lock"
    path.write_text("")
    path.chmod(0o444)  # root's, readable by all: nobody can open it read-only only
    contest = race(path, user="nobody")
    winner = contest.run()
    sample_lines(winner, contest)


@needs_root
def test_agents_racing_on_a_lock_file_no_one_may_open_leave_one(shared_dir, race):
    path = shared_dir / "agent.lock"
    path.write_text("")
    path.chmod(0o000)
    contest = race(path, user="nobody")
    winner = contest.run()
    sample_lines(winner, contest)


@needs_root
def test_agents_racing_on_a_lock_file_in_a_read_only_slug_leave_one(read_only_namespace, race):
    read_only, enter = read_only_namespace
    contest = race(read_only / "slug.lock", prefix=enter)
    winner = contest.run()
    sample_lines(winner, contest)


@needs_root
def test_agents_racing_where_a_read_only_tmp_has_no_lock_file_leave_one(read_only_namespace, race):
    read_only, enter = read_only_namespace
    contest = race(read_only / "dynostat.lock", prefix=enter, user="nobody")
    winner = contest.run()
    sample_lines(winner, contest)
    assert not (read_only / "dynostat.lock").exists()
