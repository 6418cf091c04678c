"""The dyno's memory and pids cgroups, v1 or v2, found from ``<proc>/self/cgroup``.

Every file is read and parsed on its own: a missing file leaves its metric out (None, never 0)
and the other metrics are still read. Dynos expose cgroup v1 ``memory`` files but not always a
full cgroupfs, so nothing here assumes a file exists before it has been probed.
"""

from __future__ import annotations

import os

from .procfs import MalformedError
from .sample import Memory

# A v1 cgroup without a limit reports PAGE_COUNTER_MAX rounded down to a page
# (9223372036854771712 with 4 kB pages); anything this close to 2^63 means "no limit".
V1_NO_LIMIT = 2**62

# The key parse_self_cgroup gives the cgroup v2 (unified) hierarchy, whose line is "0::/path".
UNIFIED = ""

# typing costs the agent ~2.4 MB of RSS at import (it pulls in re); the aliases below are
# only for readers and type checkers, so they never load it at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Parse = Callable[[bytes], Any]
    # read(path, parse) -> the parsed value, or None: the sampler's guarded reader, which
    # returns None when the file is missing, unreadable or malformed (reporting the last two).
    Reader = Callable[[str, Parse], Any]


def parse_self_cgroup(data: bytes) -> dict[str, str]:
    """Map each controller to the process's cgroup path; ``UNIFIED`` for the v2 line.

    Lines are ``hierarchy-id:controller,list:/path`` (cgroups(7)); v1 named hierarchies such
    as ``name=systemd`` are kept under their name.
    """
    paths: dict[str, str] = {}
    for line in data.splitlines():
        if not line.strip():
            continue
        parts = line.split(b":", 2)
        if len(parts) != 3 or not parts[2].startswith(b"/"):
            raise MalformedError(f"unexpected line in self/cgroup: {line[:120]!r}")
        path = parts[2].decode("utf-8", "surrogateescape")
        if parts[1] == b"":
            paths[UNIFIED] = path
        else:
            for controller in parts[1].split(b","):
                paths[controller.decode("utf-8", "surrogateescape")] = path
    return paths


def parse_flat_keyed(data: bytes) -> dict[str, int]:
    """``memory.stat``, ``memory.oom_control``, ``memory.events``: ``key value`` per line;
    raise MalformedError on other lines."""
    values: dict[str, int] = {}
    for line in data.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            key, value = fields
            values[key.decode("ascii")] = int(value)
        except (ValueError, UnicodeDecodeError):
            raise MalformedError(f"unexpected line: {line[:120]!r}") from None
    return values


def parse_count(data: bytes) -> int:
    """A single non-negative integer such as ``memory.current`` or ``pids.current``."""
    try:
        value = int(data.strip())
    except ValueError:
        raise MalformedError(f"expected a number, got {data[:80]!r}") from None
    if value < 0:
        raise MalformedError(f"expected a non-negative number, got {data[:80]!r}")
    return value


def parse_limit(data: bytes) -> int | None:
    """A limit file: v2 ``max`` and v1 values near 2^63 both mean "no limit" (None)."""
    if data.strip() == b"max":
        return None
    value = parse_count(data)
    return None if value >= V1_NO_LIMIT else value


def parse_oom_kills(data: bytes) -> int | None:
    """The ``oom_kill`` count of v1 ``memory.oom_control`` or v2 ``memory.events``: how many
    processes of the cgroup the OOM killer killed. None where the kernel has no such line
    (v1 before Linux 4.13)."""
    kills = parse_flat_keyed(data).get("oom_kill")
    if kills is not None and kills < 0:
        raise MalformedError(f"a negative oom_kill count in {data[:120]!r}")
    return kills


def _join(root: str, path: str) -> str:
    # The path from self/cgroup is absolute ("/" or "/a/b"); keep it under the root.
    return (root + path).rstrip("/") if path != "/" else root


class CgroupReader:
    """Finds the agent's own memory and pids cgroups once, then reads them every tick.

    The cgroup path in ``<proc>/self/cgroup`` does not exist under the root when the agent
    runs in a cgroup namespace (the dyno's cgroup then is the root), so each lookup falls
    back to the root of its hierarchy.
    """

    def __init__(self, cgroup_root: str, self_cgroup: dict[str, str], read: Reader) -> None:
        self._read = read
        self.version: int | None = None
        self.memory_dir: str | None = None
        self.pids_dir: str | None = None
        unified = self_cgroup.get(UNIFIED, "/")
        for candidate in (_join(cgroup_root, unified), cgroup_root):
            if os.path.exists(candidate + "/memory.current"):
                self.version, self.memory_dir = 2, candidate
                break
        else:
            memory_root = cgroup_root + "/memory"
            for candidate in (_join(memory_root, self_cgroup.get("memory", "/")), memory_root):
                if os.path.exists(candidate + "/memory.stat"):
                    self.version, self.memory_dir = 1, candidate
                    break
        # The pids controller may sit in the other hierarchy than memory (or memory may be
        # missing), so both are probed, the memory cgroup's version first.
        pids_root = cgroup_root + "/pids"
        unified_candidates = (_join(cgroup_root, unified), cgroup_root)
        v1_candidates = (_join(pids_root, self_cgroup.get("pids", "/")), pids_root)
        if self.version == 2:
            candidates = unified_candidates + v1_candidates
        else:
            candidates = v1_candidates + unified_candidates
        for candidate in candidates:
            # A hierarchy's root cgroup has no pids.max: the whole machine has no pids limit.
            if os.path.exists(candidate + "/pids.max"):
                self.pids_dir = candidate
                break

    def memory(self) -> Memory | None:
        """The memory cgroup's usage and quota; None when there is no memory cgroup at all."""
        if self.memory_dir is None:
            return None
        stat = self._read(self.memory_dir + "/memory.stat", parse_flat_keyed) or {}
        if self.version == 2:
            memory = Memory(
                rss=stat.get("anon"),
                cache=stat.get("file"),
                swap=self._read(self.memory_dir + "/memory.swap.current", parse_count),
                quota=self._read(self.memory_dir + "/memory.max", parse_limit),
                oom_kills=self._read(self.memory_dir + "/memory.events", parse_oom_kills),
            )
        else:
            # total_* include the child cgroups; a cgroup without children may only have
            # the plain names on old kernels.
            def pick(name: str) -> int | None:
                value = stat.get("total_" + name)
                return stat.get(name) if value is None else value

            memory = Memory(
                rss=pick("rss"),
                cache=pick("cache"),
                swap=pick("swap"),
                pgpgin=pick("pgpgin"),
                pgpgout=pick("pgpgout"),
                quota=self._read(self.memory_dir + "/memory.limit_in_bytes", parse_limit),
                oom_kills=self._read(self.memory_dir + "/memory.oom_control", parse_oom_kills),
            )
        if memory == Memory():
            return None  # the cgroup exists but nothing in it could be read
        return memory

    def pids(self) -> tuple[int | None, int | None]:
        """(pids.max, pids.current) of the pids cgroup; None for what is absent or unlimited."""
        if self.pids_dir is None:
            return None, None
        return (
            self._read(self.pids_dir + "/pids.max", parse_limit),
            self._read(self.pids_dir + "/pids.current", parse_count),
        )
