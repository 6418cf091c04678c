"""PID 1 of a dyno booted by harness.py.

unshare(1) starts this as root in a fresh PID, mount and UTS namespace with its own /proc. It
puts the slug on /app and the dyno's own /tmp, joins the dyno's cgroups, starts the dyno's
command as the dyno's unprivileged user in a `bash --login` shell, and then reaps every
process that ends up as its child (orphans are reparented to the namespace's PID 1), the
way the init of a real dyno does, so an orphan never stays a zombie.

It keeps running after the command exits while anything else in the dyno still runs (an
agent the launcher detached, for example): the platform, not the init, decides when the
rest is stopped. It exits once nothing is left, with the command's status.

Run with `python3 -I -S`: nothing from the dyno's environment (PYTHONPATH and friends, which
are the app's config vars) may change how the init itself runs.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys

MOUNT = "/usr/bin/mount"
CLONE_NEWCGROUP = 0x02000000  # <linux/sched.h>


def mount(*args: str) -> None:
    subprocess.run([MOUNT, *args], check=True)


def prepare_filesystem(spec: dict) -> None:
    # The mounts stay inside this mount namespace (unshare makes propagation private), so
    # the machine never sees them. Binds come first: their sources may live under /tmp,
    # which the dyno's own tmpfs hides next.
    for source, target in spec["binds"]:
        mount("--bind", source, target)
    for target in spec.get("read_only", []):
        mount("-o", "remount,bind,ro", target)
    mount("-t", "tmpfs", "-o", f"mode=1777,nosuid,nodev,size={spec['tmp_size']}", "tmpfs", "/tmp")


def join_cgroups(procs_files: list) -> None:
    # "0" means the writing process itself, whatever PID namespace it is in.
    for procs in procs_files:
        with open(procs, "w") as file:
            file.write("0")


def enter_cgroup_namespace(mode: str) -> None:
    """Make the dyno's cgroups the root of what the dyno sees, as a container runtime does:
    a cgroup namespace, and cgroupfs mounted afresh inside it. /proc/self/cgroup then says
    "/" and /sys/fs/cgroup holds only the dyno's own files."""
    # No os.unshare before Python 3.12; the C library has it.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWCGROUP) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWCGROUP)")
    mount("-t", "tmpfs", "-o", "mode=755,nosuid,nodev,noexec", "cgroup", "/sys/fs/cgroup")
    if mode == "v2":
        mount("-t", "cgroup2", "-o", "nosuid,nodev,noexec", "cgroup2", "/sys/fs/cgroup")
        return
    for controller in ("memory", "pids"):
        os.mkdir(f"/sys/fs/cgroup/{controller}")
        mount(
            "-t",
            "cgroup",
            "-o",
            f"nosuid,nodev,noexec,{controller}",
            "cgroup",
            f"/sys/fs/cgroup/{controller}",
        )


def become_user_and_exec(spec: dict) -> None:
    """In the forked child: drop root for good, then replace itself with the login shell."""
    try:
        # A session of its own, as the command of a container has: a terminal-less process
        # group, so nothing the init does reaches it by process group.
        os.setsid()
        for signum in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        uid, gid, nproc = spec["uid"], spec["gid"], spec["nproc"]
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        # RLIMIT_NPROC counts every task of the real uid machine-wide; the uid is fresh,
        # so this is the dyno's task limit. It binds only once root is gone.
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        os.setresuid(uid, uid, uid)
        os.chdir("/app")
        # The environment comes whole from the spec: the init's own (Python may coerce the
        # locale into it) is not the dyno's.
        os.execvpe("bash", ["bash", "--login", "-c", spec["command"]], spec["env"])
    except BaseException as error:  # noqa: BLE001 - nothing may return into the init's loop
        os.write(2, f"dyno init: cannot start the command: {error}\n".encode())
        os._exit(127)


def exit_code(status: int) -> int:
    # Heroku reports a process killed by a signal as 128 + the signal, like a shell does.
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def reap_until_empty(command_pid: int, status_fd: int) -> int:
    command_status = 0
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return command_status
        if pid == command_pid:
            command_status = exit_code(status)
            os.write(status_fd, f"exit {command_status}\n".encode())


def main() -> int:
    with open(sys.argv[1]) as file:
        spec = json.load(file)
    status_fd = spec["status_fd"]
    os.set_inheritable(status_fd, False)
    # The log stream becomes stdout and stderr of everything in the dyno; unshare(1)'s own
    # messages stay out of it.
    os.dup2(spec["log_fd"], 1)
    os.dup2(spec["log_fd"], 2)
    os.close(spec["log_fd"])
    # As PID 1 the init gets only signals it handles; ignoring SIGINT keeps Python from
    # turning a stray one into KeyboardInterrupt and leaving the dyno without its reaper.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    socket.sethostname(spec["hostname"])  # in the dyno's own UTS namespace
    prepare_filesystem(spec)
    join_cgroups(spec["cgroup_procs"])
    if spec["cgroupns"]:
        enter_cgroup_namespace(spec["cgroup_mode"])
    pid = os.fork()
    if pid == 0:
        become_user_and_exec(spec)
    return reap_until_empty(pid, status_fd)


if __name__ == "__main__":
    sys.exit(main())
