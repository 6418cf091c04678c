"""One agent per dyno: the lock a launched agent (``--lock FILE``) takes before it samples.

The lock is an exclusive ``flock`` on FILE. ``flock`` needs an open descriptor, not a
writable one, so a file the agent may not write (a read-only slug, a file of another user
with mode 444) is opened read-only and locked all the same.

Where FILE cannot be opened at all (a read-only /tmp in which it does not exist yet, mode 000
of another user) or cannot be locked, the lock is a Linux abstract unix socket bound to a
name made of FILE's path, the host name and the mount namespace: it needs no file system.
Every agent of one dyno meets the same file in the same state, so they all take the same kind
of lock, and a second one finds it taken and exits.

The kernel drops either lock when its holder exits, or re-executes itself after a crash
(neither descriptor survives exec), so no lock is ever left behind by a dead agent. Only when
neither can be taken does ``take`` raise; the caller then runs unlocked rather than leave the
dyno without metrics.

The socket is the fallback, not a second lock always held beside the file: the socket module
costs the agent 0.1 to 0.3 MB of memory for the whole life of the dyno.
"""

from __future__ import annotations

import errno
import fcntl
import os

# Never wait on the open itself: a FIFO planted at the path would block a read-only open
# until a writer came, and a terminal must not become the agent's controlling one.
_OPEN_FLAGS = os.O_NOCTTY | os.O_NONBLOCK
_NAMESPACE_LINK = "/proc/self/ns/mnt"


class Held:
    """What holds the lock (the file's descriptor, or the socket): keep it while the agent runs."""

    __slots__ = ("socket", "fd")

    def __init__(self, socket: object | None, fd: int | None) -> None:
        self.socket = socket
        self.fd = fd

    def release(self) -> None:
        """Let go of the lock now (the kernel does it anyway when the process exits)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def socket_name(path: str) -> bytes:
    """The abstract socket address that stands for the lock file at ``path`` in this dyno.

    Abstract names belong to a network namespace, which dynos on one host might share; the
    host name and the mount namespace tell such dynos apart, and every process of one dyno
    (exec sessions included) shares both. The path is resolved, so two spellings of one file
    give one name.
    """
    # Imported here, for the fallback alone: a shared library on some Pythons, and memory.
    import binascii  # noqa: PLC0415

    try:
        namespace = os.readlink(_NAMESPACE_LINK)
    except OSError:
        namespace = ""
    # "mnt:[4026531841]" -> "4026531841"; whatever else a kernel says is kept as it is.
    namespace = namespace.partition("[")[2].rstrip("]") or namespace
    host = os.fsencode(os.uname().nodename)
    checksum = binascii.crc32(os.fsencode(os.path.realpath(path)))
    # At most 1 + 14 + 20 + 1 + 64 + 1 + 8 bytes: under the 108 an abstract address may hold.
    return b"\0dynostat-lock:%s:%s:%08x" % (os.fsencode(namespace)[:20], host[:64], checksum)


def bind_abstract(name: bytes):
    """A socket bound to the abstract ``name``, or None when another process holds the name.

    OSError means abstract sockets cannot be used here at all.
    """
    # The C module alone, and only here: socket.py would import enum as well.
    import _socket  # noqa: PLC0415

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.bind(name)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise
    return sock


def open_lock_file(path: str) -> int:
    """A descriptor of the lock file: read-write (created if missing), else read-only."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
    except OSError:
        # EROFS, EACCES, EPERM: a read-only descriptor locks just as well.
        return os.open(path, os.O_RDONLY | _OPEN_FLAGS)


def take(path: str, *, bind=bind_abstract) -> Held | None:
    """The lock for ``path``, or None when another agent holds it.

    Raises OSError only when neither the file nor the socket could be used.
    """
    try:
        fd = open_lock_file(path)
    except OSError as exc:
        file_error = exc
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:  # ENOLCK and the like: the file cannot be locked at all
            os.close(fd)
            file_error = exc
        else:
            return Held(None, fd)
    try:
        sock = bind(socket_name(path))
    except OSError as exc:
        raise OSError(
            f"no lock file ({_reason(file_error)}) and no lock socket ({_reason(exc)})"
        ) from None
    if sock is None:
        return None
    return Held(sock, None)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
