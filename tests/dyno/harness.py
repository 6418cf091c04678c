"""A Heroku-like dyno on this machine, for tests and by hand.

    python3 tests/dyno/harness.py APP_DIR 'command' [--dyno web.1] [--seconds 30] ...
    python3 tests/dyno/harness.py tests/dyno/apps/zombies 'python3 web.py' \
        --app-file tests/dyno/apps/serving.py

builds APP_DIR (with each --app-file beside its own files) with the buildpack the way the
platform does (bin/detect, bin/compile BUILD_DIR CACHE_DIR ENV_DIR with config vars as files,
bin/release), boots the slug as a dyno, prints the dyno's log stream with a timestamp per
line, and stops it like the platform.

A dyno here is:
- its own PID namespace with its own /proc, whose PID 1 is a reaping init (init.py), so the
  app's shell is not PID 1 and orphans never stay zombies;
- its own mount namespace: the slug on /app (HOME and cwd; read-only with
  read_only_slug=True), a private /tmp, and an /etc/profile that sources
  $HOME/.profile.d/*.sh for every login shell (profile.sh);
- a pids cgroup with pids.max and a memory cgroup with a limit (cgroup v1, or v2 where the
  machine has it), both removed afterwards; with cgroupns=True also a cgroup namespace and
  cgroupfs mounted inside it, so the dyno sees its own cgroups as the root, as in a
  container (otherwise it sees the machine's tree and finds itself via /proc/self/cgroup);
- an unprivileged uid no other process uses, with RLIMIT_NPROC = the task limit;
- a Heroku-like environment (DYNO, PORT for web, HOME, PATH and the config vars; nothing of
  the caller's environment) and `bash --login -c COMMAND`;
- stopped with SIGTERM to every process of the dyno, then SIGKILL after a grace period.

Needs root, unshare(1), nsenter(1), mount(8) and cgroups; `unsupported_reason()` says in one
line why a machine cannot run dynos.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from re import Pattern
from typing import Callable, TextIO, Union

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, when run by hand

from support import readme_decoder
from support.cgroups import Cgroups, cgroup_mode
from support.network import free_port
from support.paths import REPO, SYSTEM_PYTHON
from support.processes import isolated_python_in_namespaces, stop

HERE = Path(__file__).resolve().parent
INIT = HERE / "init.py"
PROFILE = HERE / "profile.sh"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
STACK = "heroku-22"
MIB = 1024 * 1024
# Dyno uids come from a range no distribution hands out to people or services.
UID_RANGE = (420000, 490000)

Matcher = Union[str, Pattern[str], Callable[["LogLine"], bool]]


class DynoError(RuntimeError):
    """The harness could not do what a platform would have done (build, boot, stop)."""


@dataclass(frozen=True)
class LogLine:
    """One line of the dyno's log stream, timestamped when the harness read it."""

    mono: float  # time.monotonic(), for measuring gaps and deadlines
    wall: float  # time.time(), for printing
    source: str  # "app" for what the dyno's processes wrote, "heroku" for the platform's
    dyno: str
    text: str

    def __str__(self) -> str:
        stamp = datetime.datetime.fromtimestamp(self.wall, datetime.timezone.utc)
        return f"{stamp.isoformat(timespec='microseconds')} {self.source}[{self.dyno}]: {self.text}"


@dataclass
class Build:
    """What the platform keeps from a build: the slug and each step's output."""

    slug: Path
    detect: str
    compile: str
    release: str


@dataclass
class Process:
    """One process of a running dyno, seen from the machine."""

    host_pid: int
    pid: int  # as seen inside the dyno
    ppid: int  # as seen inside the dyno (0 for a process entered from outside)
    state: str
    comm: str
    cmdline: str
    threads: int


def unsupported_reason() -> str | None:
    """One line saying why this machine cannot run a dyno, or None when it can."""
    if os.geteuid() != 0:
        return "dynos need root (namespaces, cgroups, a separate uid)"
    for tool in ("unshare", "nsenter", "setpriv", "mount", "bash"):
        if shutil.which(tool, path=BASE_PATH) is None:
            return f"dynos need {tool}(1), not found on {BASE_PATH}"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"dynos need the run image's Python at {SYSTEM_PYTHON}"
    if cgroup_mode() is None:
        return "dynos need pids and memory cgroups (v1 or v2), none found"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--uts", "true"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare cannot create PID/mount namespaces: {probe.stderr.decode().strip()}"
    return None


def free_uid() -> int:
    """A uid no process on the machine runs as and no account owns."""
    taken = set()
    with open("/etc/passwd") as passwd:
        for line in passwd:
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit():
                taken.add(int(parts[2]))
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                # Bytes: any process of the machine may have a name that is not UTF-8.
                status = Path(f"/proc/{pid}/status").read_bytes()
            except OSError:
                continue
            match = re.search(rb"^Uid:\s+(\d+)", status, re.MULTILINE)
            if match:
                taken.add(int(match.group(1)))
    while True:
        uid = random.randrange(*UID_RANGE)
        if uid not in taken:
            return uid


def chown_tree(root: Path, uid: int, gid: int) -> None:
    os.lchown(root, uid, gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(directory, name), uid, gid)


def build(
    app_dir: str | Path,
    work_dir: Path,
    cache_dir: Path,
    config: Mapping[str, str],
    *,
    buildpack: Path | None = REPO,
    stack: str = STACK,
    app_files: Sequence[Path] = (),
) -> Build:
    """Build app_dir into a slug under work_dir, like the platform runs a classic buildpack.

    Each of app_files is copied beside the app's own files first, as an app vendors a module
    it shares with others. With buildpack=None the app is copied as it is (for testing the
    dyno itself).
    """
    build_dir = work_dir / "build"
    shutil.copytree(app_dir, build_dir, symlinks=True)
    for path in app_files:
        shutil.copy(path, build_dir / Path(path).name)
    if buildpack is None:
        return Build(slug=build_dir, detect="", compile="", release="")
    env_dir = work_dir / "env"
    env_dir.mkdir()
    for name, value in config.items():
        (env_dir / name).write_text(value)
    cache_dir.mkdir(parents=True, exist_ok=True)
    home = work_dir / "build-home"
    home.mkdir()
    # The build sees the stack, a plain PATH and nothing of the caller: config vars reach
    # bin/compile only as files in ENV_DIR.
    env = {"PATH": BASE_PATH, "STACK": stack, "HOME": str(home), "LANG": "C.UTF-8"}

    def step(*args: str) -> str:
        result = subprocess.run(
            [str(buildpack / "bin" / args[0]), *args[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=build_dir,
            timeout=300,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise DynoError(f"bin/{args[0]} exited {result.returncode}:\n{output}")
        return output

    detect = step("detect", str(build_dir))
    compiled = step("compile", str(build_dir), str(cache_dir), str(env_dir))
    release = step("release", str(build_dir))
    return Build(slug=build_dir, detect=detect, compile=compiled, release=release)


class Dyno:
    """One running dyno. Use as a context manager: leaving it stops the dyno and removes
    every process, mount and cgroup it made, whatever happened inside."""

    def __init__(
        self,
        slug: Path,
        command: str,
        *,
        dyno: str = "web.1",
        config: Mapping[str, str] | None = None,
        tasks_limit: int = 256,
        memory_limit: int = 512 * MIB,
        grace: float = 3.0,
        echo: TextIO | None = None,
        on_line: Callable[[LogLine], None] | None = None,
        cgroupns: bool = False,
        read_only_slug: bool = False,
    ) -> None:
        self.slug = Path(slug)
        self.read_only_slug = read_only_slug
        self.on_line = on_line
        self.cgroupns = cgroupns
        self.command = command
        self.dyno = dyno
        self.process_type = dyno.split(".", 1)[0]
        self.config = dict(config or {})
        self.tasks_limit = tasks_limit
        self.memory_limit = memory_limit
        self.grace = grace
        self.echo = echo
        self.uid = free_uid()
        # A dyno's hostname is its own id, which is what the agent reports as dyno=.
        self.hostname = str(uuid.uuid4())
        self.port = free_port() if self.process_type == "web" else None
        self.cgroups = Cgroups(f"dynostat-dyno-{self.uid}", tasks_limit, memory_limit)
        self.lines: list[LogLine] = []
        self.exit_status: int | None = None
        self.boot_errors = ""
        self.init_pid: int | None = None
        self._changed = threading.Condition()
        self._unshare: subprocess.Popen | None = None
        self._init_pidfd: int | None = None
        self._readers: list[threading.Thread] = []
        self._stopped = False
        self._tmp = Path(tempfile.mkdtemp(prefix="dynostat-dyno-"))

    # -- environment -----------------------------------------------------------------

    def environment(self) -> dict:
        """What the dyno's processes start with: the platform's variables, then config."""
        env = {"PATH": BASE_PATH, "HOME": "/app", "DYNO": self.dyno}
        if self.port is not None:
            env["PORT"] = str(self.port)
        env.update(self.config)
        return env

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Dyno:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        Path("/app").mkdir(mode=0o755, exist_ok=True)  # only a mount point, never written
        chown_tree(self.slug, self.uid, self.uid)
        self.cgroups.create()
        status_read, status_write = os.pipe()
        log_read, log_write = os.pipe()
        spec = {
            "binds": [[str(self.slug), "/app"], [str(PROFILE), "/etc/profile"]],
            "read_only": ["/app"] if self.read_only_slug else [],
            "tmp_size": "64m",
            "cgroup_procs": self.cgroups.procs_files,
            "uid": self.uid,
            "gid": self.uid,
            "nproc": self.tasks_limit,
            "command": self.command,
            "hostname": self.hostname,
            "cgroupns": self.cgroupns,
            "cgroup_mode": self.cgroups.mode,
            "env": self.environment(),
            "status_fd": status_write,
            "log_fd": log_write,
        }
        spec_file = self._tmp / "spec.json"
        spec_file.write_text(json.dumps(spec))
        self._platform(f"Starting process with command `{self.command}`")
        try:
            self._unshare = subprocess.Popen(
                isolated_python_in_namespaces(
                    ["--pid", "--fork", "--mount", "--mount-proc", "--uts"],
                    str(INIT),
                    str(spec_file),
                ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={"PATH": BASE_PATH},
                pass_fds=(status_write, log_write),
            )
        finally:
            os.close(log_write)
            os.close(status_write)
        self._readers = [
            threading.Thread(target=self._pump, args=(log_read, status_read), daemon=True),
            threading.Thread(target=self._read_boot_errors, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.init_pid = self._find_init()
        # Held for the dyno's life: signals to the init can never reach a reused pid.
        self._init_pidfd = os.pidfd_open(self.init_pid)
        self._wait_for_cgroups()
        if self.port is not None:
            threading.Thread(target=self._watch_port, daemon=True).start()
        else:
            self._platform("State changed from starting to up")

    def _find_init(self, timeout: float = 10.0) -> int:
        assert self._unshare is not None
        children = Path(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pids = children.read_bytes().split()
            except FileNotFoundError:
                pids = []
            if pids:
                return int(pids[0])
            if self._unshare.poll() is not None:
                self._unshare.wait()
                for reader in self._readers:
                    reader.join(timeout=5)
                raise DynoError(f"the dyno did not boot:\n{self.boot_errors}{self.log_text()}")
            time.sleep(0.01)
        raise DynoError("the dyno's init did not appear within 10 s")

    def _wait_for_cgroups(self, timeout: float = 10.0) -> None:
        # The init joins the cgroups after its mounts; until then the dyno has no members.
        deadline = time.monotonic() + timeout
        while self.init_pid not in self.cgroups.pids():
            if time.monotonic() > deadline or self._unshare.poll() is not None:
                raise DynoError(f"the dyno's init never joined its cgroups:\n{self.log_text()}")
            time.sleep(0.005)

    def _watch_port(self) -> None:
        # Heroku marks a web dyno up once it binds $PORT; give up when the dyno stops.
        while not self._stopped and self.exit_status is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    self._platform("State changed from starting to up")
                    return
            except OSError:
                time.sleep(0.1)

    def stop(self, grace: float | None = None) -> None:
        """Stop like the platform: SIGTERM to every process, SIGKILL after the grace period."""
        if self._stopped or self._unshare is None:
            return
        self._stopped = True
        grace = self.grace if grace is None else grace
        self._platform("Stopping all processes with SIGTERM")
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self._app_pids():
            time.sleep(0.02)
        if self._app_pids():
            self._platform(
                f"Error R12 (Exit timeout) -> At least one process failed to exit within "
                f"{grace:g} seconds of SIGTERM"
            )
            self._platform("Stopping remaining processes with SIGKILL")
        else:
            # Everything exited: the init reaps the last of it, reports the command's
            # status and exits by itself; the SIGKILL below is then a no-op.
            self.wait_down(1.0)
        self._kill_everything()

    def _app_pids(self) -> set[int]:
        return self.cgroups.pids() - {self.init_pid}

    def signal_all(self, signum: int) -> None:
        """Send a signal to every process in the dyno except its init."""
        for pid in sorted(self._app_pids()):
            self._signal_member(pid, signum)

    def _signal_member(self, pid: int, signum: int) -> None:
        # Through a pidfd, and only once the pid is confirmed in this dyno's cgroup: a
        # pid that exited and was reused elsewhere is never signalled.
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            if pid in self.cgroups.pids():
                signal.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            pass
        finally:
            os.close(pidfd)

    def _kill_everything(self) -> None:
        # SIGKILL to the namespace's init makes the kernel kill every process in it.
        if self._init_pidfd is not None:
            try:
                signal.pidfd_send_signal(self._init_pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.cgroups.pids() and time.monotonic() < deadline:
            for pid in self.cgroups.pids():
                self._signal_member(pid, signal.SIGKILL)
            time.sleep(0.02)
        if self._unshare is not None:
            stop(self._unshare, timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)
        if self.exit_status is None:
            # The command never reported: the SIGKILL took it with the init.
            self._record_exit(128 + signal.SIGKILL)
        self._platform("State changed from up to down")

    def close(self) -> None:
        """Stop the dyno if it runs and remove everything it made. Safe to call twice."""
        try:
            if self._unshare is not None and not self._stopped:
                self.stop(grace=0)
            # Anything that joined after the stop (a late exec session) goes too.
            for pid in self.cgroups.pids():
                self._signal_member(pid, signal.SIGKILL)
        finally:
            try:
                if self._init_pidfd is not None:
                    os.close(self._init_pidfd)
                    self._init_pidfd = None
                self.cgroups.remove()
            finally:
                shutil.rmtree(self._tmp, ignore_errors=True)

    # -- the log stream --------------------------------------------------------------

    def _append(self, source: str, text: str) -> None:
        with self._changed:
            # Stamped under the lock, so the list is in the order of its timestamps.
            line = LogLine(time.monotonic(), time.time(), source, self.dyno, text)
            self.lines.append(line)
            self._changed.notify_all()
            # Under the lock: lines from the log and the platform never interleave.
            if self.echo is not None:
                print(line, file=self.echo, flush=True)
            if self.on_line is not None:
                self.on_line(line)

    def _platform(self, text: str) -> None:
        self._append("heroku", text)

    def _pump(self, log_fd: int, status_fd: int) -> None:
        """Read the log stream and the init's status reports in one thread, in order.

        A command writes its last lines before it exits, so when the init reports the exit
        those lines are already in the log pipe: the pipe is drained first, and the exit is
        never seen before the output that came before it."""
        os.set_blocking(log_fd, False)
        partial = b""
        open_fds = {log_fd, status_fd}
        while open_fds:
            readable, _, _ = select.select(list(open_fds), [], [])
            if log_fd in open_fds and (log_fd in readable or status_fd in readable):
                partial, log_open = self._drain_log(log_fd, partial)
                if not log_open:
                    open_fds.discard(log_fd)
            if status_fd in readable:
                report = os.read(status_fd, 4096)
                if not report:
                    open_fds.discard(status_fd)
                for line in report.decode().splitlines():
                    word, _, value = line.partition(" ")
                    if word == "exit":
                        self._record_exit(int(value))
        if partial:
            self._append("app", partial.decode("utf-8", "replace"))
        os.close(log_fd)
        os.close(status_fd)

    def _drain_log(self, fd: int, partial: bytes) -> tuple[bytes, bool]:
        """Read what the log pipe holds now; (the unfinished last line, whether it is open)."""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return partial, True
            if not chunk:
                return partial, False
            *lines, partial = (partial + chunk).split(b"\n")
            for line in lines:
                self._append("app", line.decode("utf-8", "replace"))

    def _read_boot_errors(self) -> None:
        # What unshare(1) and the init say before the log stream exists: kept for errors.
        assert self._unshare is not None and self._unshare.stderr is not None
        self.boot_errors = self._unshare.stderr.read().decode("utf-8", "replace")

    def _record_exit(self, status: int) -> None:
        with self._changed:
            if self.exit_status is not None:
                return
            self.exit_status = status
        self._platform(f"Process exited with status {status}")

    def app_lines(self) -> list[LogLine]:
        with self._changed:
            return [line for line in self.lines if line.source == "app"]

    def log_text(self) -> str:
        with self._changed:
            return "\n".join(str(line) for line in self.lines)

    def wait_for(self, matcher: Matcher, timeout: float, after: int = 0) -> LogLine:
        """The first line (from index `after` on) that matches, waiting up to timeout.

        matcher: a regex searched in the line's text (app lines only), or a predicate
        over LogLine. Raises AssertionError with the log so far when nothing matched.
        """
        predicate = _predicate(matcher)
        deadline = time.monotonic() + timeout
        position = after
        with self._changed:
            while True:
                for index in range(position, len(self.lines)):
                    if predicate(self.lines[index]):
                        return self.lines[index]
                position = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no line matching {matcher!r} within {timeout:g} s; the log:\n"
                        + "\n".join(str(line) for line in self.lines[-80:])
                    )
                self._changed.wait(remaining)

    def wait_down(self, timeout: float) -> bool:
        """Wait until nothing runs in the dyno any more (its init has exited by itself,
        which it does once every process is gone); whether that happened in time."""
        assert self._unshare is not None
        try:
            self._unshare.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def wait_exit(self, timeout: float) -> int:
        """Wait for the command to exit by itself; its status."""
        self.wait_for(lambda line: line.text.startswith("Process exited"), timeout)
        assert self.exit_status is not None
        return self.exit_status

    # -- looking inside --------------------------------------------------------------

    def member_pids(self) -> set[int]:
        """Host pids of every process of the dyno, zombies included.

        A cgroup lists a process only until it exits, so zombies are found as children:
        everything below the init and below each cgroup member (exec sessions enter from
        outside the init's tree)."""
        members = set()
        pending = self.cgroups.pids()
        init_alive = self._unshare is not None and self._unshare.poll() is None
        if self.init_pid is not None and init_alive:
            pending.add(self.init_pid)
        while pending:
            pid = pending.pop()
            if pid in members:
                continue
            members.add(pid)
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except FileNotFoundError:
                continue
            for tid in tids:
                try:
                    children = Path(f"/proc/{pid}/task/{tid}/children").read_bytes()
                except (FileNotFoundError, ProcessLookupError):
                    continue
                pending.update(int(child) for child in children.split())
        return {pid for pid in members if Path(f"/proc/{pid}").exists()}

    def processes(self) -> list[Process]:
        """Every process of the dyno (zombies too), read from the machine's /proc."""
        found = []
        for host_pid in sorted(self.member_pids()):
            try:
                # Bytes, as the agent reads them: a process's name is whatever bytes it set,
                # and status shows it escaped, so the name comes raw from comm.
                status = Path(f"/proc/{host_pid}/status").read_bytes()
                comm = Path(f"/proc/{host_pid}/comm").read_bytes()
                cmdline = Path(f"/proc/{host_pid}/cmdline").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = dict(line.split(b":\t", 1) for line in status.splitlines() if b":\t" in line)
            ns_pids = fields.get(b"NSpid", str(host_pid).encode()).split()
            ns_ppid = _ns_pid(int(fields[b"PPid"])) if fields.get(b"PPid") else 0
            found.append(
                Process(
                    host_pid=host_pid,
                    pid=int(ns_pids[-1]),
                    ppid=ns_ppid,
                    state=fields[b"State"].split()[0].decode("ascii"),
                    comm=comm.removesuffix(b"\n").decode("utf-8", "replace"),
                    cmdline=cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip(),
                    threads=int(fields[b"Threads"]),
                )
            )
        return found

    def agents(self) -> list[Process]:
        """The dyno's live dynostat agents (a zombie has no command line to match)."""
        return [
            process
            for process in self.processes()
            if "/dynostat-agent " in process.cmdline + " " and process.state != "Z"
        ]

    def _enter_argv(self, argv: Sequence[str], as_user: bool = True) -> list[str]:
        assert self.init_pid is not None
        prefix = [
            "nsenter",
            "--target",
            str(self.init_pid),
            "--pid",
            "--mount",
            "--uts",
            *(["--cgroup"] if self.cgroupns else []),
            "--wdns=/app",
            "--",
        ]
        if as_user:
            prefix += [
                "setpriv",
                "--reuid",
                str(self.uid),
                "--regid",
                str(self.uid),
                "--clear-groups",
                "--",
            ]
        return prefix + list(argv)

    def _join_dyno(self) -> None:
        # Runs in the child between fork and exec: the session joins the dyno's cgroups
        # and gets its task limit before it enters the namespaces.
        import resource

        for procs in self.cgroups.procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        resource.setrlimit(resource.RLIMIT_NPROC, (self.tasks_limit, self.tasks_limit))

    def exec(
        self,
        command: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess:
        """A `heroku ps:exec`-like session: `bash --login -c command` inside the running
        dyno, as its user, without config vars. Its output is the session's, not the log's.
        """
        session_env = {"PATH": BASE_PATH, "HOME": "/app"} if env is None else dict(env)
        # A file, not a pipe: a daemon started by the session would hold a pipe open and
        # the session would never seem to end.
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(
                self._enter_argv(["bash", "--login", "-c", command]),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=session_env,
                preexec_fn=self._join_dyno,
                timeout=timeout,
                check=False,
            )
            output.seek(0)
            result.stdout = output.read().decode("utf-8", "replace")
        return result

    def census(self) -> dict:
        """Count processes, threads, zombies and tasks from inside the dyno's namespace,
        independently of the agent: one pass over the dyno's /proc, leaving itself out, reading
        each stat as bytes (a comm need not be UTF-8) and splitting it after the last ')'."""
        script = (
            "import json,os\n"
            "me=os.getpid();c={'processes':0,'threads':0,'zombies':0}\n"
            "for p in os.listdir('/proc'):\n"
            " if not p.isdigit() or int(p)==me: continue\n"
            " try: s=open('/proc/'+p+'/stat','rb').read()\n"
            " except OSError: continue\n"
            " f=s[s.rindex(b')')+2:].split()\n"
            " c['processes']+=1;c['threads']+=int(f[17]);c['zombies']+=f[0]==b'Z'\n"
            "c['tasks']=c['threads'];print(json.dumps(c))\n"
        )
        result = subprocess.run(
            self._enter_argv([SYSTEM_PYTHON, "-I", "-S", "-c", script], as_user=False),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return json.loads(result.stdout)


def _ns_pid(host_pid: int) -> int:
    try:
        status = Path(f"/proc/{host_pid}/status").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith(b"NSpid:"):
            pids = line.split()[1:]
            # A parent outside the dyno's namespace (unshare, nsenter) shows as 0 inside.
            return int(pids[-1]) if len(pids) > 1 else 0
    return 0


def _predicate(matcher: Matcher) -> Callable[[LogLine], bool]:
    if callable(matcher):
        return matcher
    pattern = re.compile(matcher) if isinstance(matcher, str) else matcher
    return lambda line: line.source == "app" and pattern.search(line.text) is not None


# -- reading the agent's lines (with the README's decoder) --------------------------------


def metric_lines(lines: Sequence[LogLine], metric: str, prefix: str = "dynostat.") -> list:
    """The app lines carrying sample#<prefix><metric>, one per interval."""
    key = f"sample#{prefix}{metric}="
    return [line for line in lines if line.source == "app" and key in line.text]


def metric(line: LogLine, name: str, prefix: str = "dynostat.") -> float | None:
    """The number of sample#<prefix><name> in a line, without its unit."""
    value = readme_decoder.fields(line.text).get(f"sample#{prefix}{name}")
    if value is None:
        return None
    return float(re.match(r"-?[0-9.]+", value).group(0))


def gaps(lines: Sequence[LogLine]) -> list:
    """Seconds between consecutive lines, as the harness read them."""
    return [later.mono - earlier.mono for earlier, later in zip(lines, lines[1:])]


def warnings(lines: Sequence[LogLine], event: str | None = None) -> list:
    """The agent's at=warn lines, optionally of one event."""
    found = []
    for line in lines:
        if line.source != "app" or "at=warn" not in line.text:
            continue
        fields = readme_decoder.fields(line.text)
        if fields.get("at") == "warn" and (event is None or fields.get("event") == event):
            found.append(line)
    return found


# -- everything at once -------------------------------------------------------------------


@dataclass
class Session:
    """A build and a dyno made from one app; see run()."""

    build: Build
    dyno: Dyno
    work_dir: Path = field(repr=False)


class run:
    """Build app_dir and boot it; leaving the block stops the dyno and removes it all."""

    def __init__(
        self,
        app_dir: str | Path,
        command: str,
        *,
        config: Mapping[str, str] | None = None,
        cache_dir: Path | None = None,
        buildpack: Path | None = REPO,
        build_echo: TextIO | None = None,
        app_files: Sequence[Path] = (),
        **dyno_options: object,
    ) -> None:
        self.build_echo = build_echo
        self.app_files = app_files
        self.app_dir = Path(app_dir)
        self.command = command
        self.config = dict(config or {})
        self.cache_dir = cache_dir
        self.buildpack = buildpack
        self.dyno_options = dyno_options
        self.work_dir: Path | None = None
        self.dyno: Dyno | None = None

    def __enter__(self) -> Session:
        self.work_dir = Path(tempfile.mkdtemp(prefix="dynostat-build-"))
        try:
            cache = self.cache_dir or self.work_dir / "cache"
            built = build(
                self.app_dir,
                self.work_dir,
                cache,
                self.config,
                buildpack=self.buildpack,
                app_files=self.app_files,
            )
            if self.build_echo is not None:
                print(built.detect + built.compile + built.release, file=self.build_echo)
            self.dyno = Dyno(built.slug, self.command, config=self.config, **self.dyno_options)
            self.dyno.__enter__()
        except BaseException:
            self._clean()
            raise
        return Session(build=built, dyno=self.dyno, work_dir=self.work_dir)

    def __exit__(self, *exc_info: object) -> None:
        self._clean()

    def _clean(self) -> None:
        try:
            if self.dyno is not None:
                self.dyno.close()
        finally:
            if self.work_dir is not None:
                shutil.rmtree(self.work_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build an app with the dynostat buildpack and run it as a dyno here, "
        "printing its log stream.",
    )
    parser.add_argument("app_dir")
    parser.add_argument("command", help="what the Procfile would say, e.g. 'python3 app.py'")
    parser.add_argument("--dyno", default="web.1", help="DYNO, e.g. web.1, worker.1, run.1")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a config var (repeatable)",
    )
    parser.add_argument("--tasks-limit", type=int, default=256)
    parser.add_argument("--memory-mb", type=int, default=512)
    parser.add_argument(
        "--seconds",
        type=float,
        default=30,
        help="stop the dyno after this long (if the command has not exited)",
    )
    parser.add_argument(
        "--grace", type=float, default=30, help="seconds between SIGTERM and SIGKILL at shutdown"
    )
    parser.add_argument(
        "--cgroupns",
        action="store_true",
        help="give the dyno a cgroup namespace: its cgroups are the root of what it sees",
    )
    parser.add_argument(
        "--read-only-slug", action="store_true", help="mount the slug on /app read-only"
    )
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="run the app directory as it is, without the buildpack",
    )
    parser.add_argument("--show-build", action="store_true", help="print the build output")
    parser.add_argument(
        "--app-file",
        action="append",
        default=[],
        type=Path,
        help="a file to put beside the app's own (repeatable), as the fixture apps' serving.py",
    )
    args = parser.parse_args(argv)
    reason = unsupported_reason()
    if reason:
        print(f"harness: cannot run a dyno here: {reason}", file=sys.stderr)
        return 2
    config = {}
    for item in args.config:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--config wants NAME=VALUE, got {item!r}")
        config[name] = value
    try:
        with run(
            args.app_dir,
            args.command,
            config=config,
            buildpack=None if args.no_build else REPO,
            build_echo=sys.stdout if args.show_build else None,
            app_files=args.app_file,
            dyno=args.dyno,
            tasks_limit=args.tasks_limit,
            memory_limit=args.memory_mb * MIB,
            grace=args.grace,
            cgroupns=args.cgroupns,
            read_only_slug=args.read_only_slug,
            echo=sys.stdout,
        ) as session:
            dyno = session.dyno
            try:
                dyno.wait_exit(args.seconds)
            except AssertionError:
                pass
            dyno.stop()
    except DynoError as error:
        print(f"harness: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
