"""The pids and memory cgroups a test (or a dyno of the harness) runs its processes in.

cgroup v1 (a pids and a memory hierarchy) or v2, whichever the machine has; created beside
the caller's own cgroups, with a task limit and a memory limit, swap kept out of it, and
removed afterwards once their last process is gone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_mode() -> str | None:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        controllers = (CGROUP_ROOT / "cgroup.controllers").read_text().split()
        return "v2" if {"pids", "memory"} <= set(controllers) else None
    if (CGROUP_ROOT / "pids" / "cgroup.procs").exists() and (
        CGROUP_ROOT / "memory" / "cgroup.procs"
    ).exists():
        return "v1"
    return None


class Cgroups:
    """A pids and a memory cgroup (one cgroup on v2), created beside the caller's own ones.

    ``with Cgroups(name, tasks_limit, memory_limit) as cgroups:`` creates them and removes
    them afterwards, also when the block fails; its processes must be gone by then.
    """

    def __init__(self, name: str, tasks_limit: int, memory_limit: int) -> None:
        self.mode = cgroup_mode()
        if self.mode is None:
            raise RuntimeError("no pids and memory cgroups on this machine")
        self.dirs: list[Path] = []
        if self.mode == "v1":
            # Nested under the caller's own memory cgroup, so whatever limit the machine
            # puts on the caller still covers its dynos.
            own = self._own_v1_paths()
            for controller in ("pids", "memory"):
                parent = CGROUP_ROOT / controller / own.get(controller, "/").lstrip("/")
                self.dirs.append(parent / name)
        else:
            self.dirs.append(CGROUP_ROOT / name)
        self.tasks_limit = tasks_limit
        self.memory_limit = memory_limit

    @staticmethod
    def _own_v1_paths() -> dict:
        paths = {}
        # Bytes, like every read of /proc here: a cgroup's name need not be UTF-8.
        for line in Path("/proc/self/cgroup").read_bytes().splitlines():
            _, controllers, path = os.fsdecode(line).split(":", 2)
            for controller in controllers.split(","):
                paths[controller] = path
        return paths

    def create(self) -> None:
        if self.mode == "v2":
            subtree = CGROUP_ROOT / "cgroup.subtree_control"
            enabled = subtree.read_text().split()
            for controller in ("pids", "memory"):
                if controller not in enabled:
                    subtree.write_text(f"+{controller}")
        for path in self.dirs:
            path.mkdir()
        if self.mode == "v1":
            pids, memory = self.dirs
            (pids / "pids.max").write_text(str(self.tasks_limit))
            (memory / "memory.limit_in_bytes").write_text(str(self.memory_limit))
            memsw = memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                # Swap would let memory pass the quota unseen; a dyno's swap is its own
                # metric, but this machine's swap is not the dyno's.
                memsw.write_text(str(self.memory_limit))
        else:
            (self.dirs[0] / "pids.max").write_text(str(self.tasks_limit))
            (self.dirs[0] / "memory.max").write_text(str(self.memory_limit))
            swap = self.dirs[0] / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")

    @property
    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.dirs]

    @property
    def memory_dir(self) -> Path:
        return self.dirs[-1]

    def read_memory_limit(self) -> int:
        """The memory limit as the kernel holds it (it rounds to whole pages)."""
        name = "memory.limit_in_bytes" if self.mode == "v1" else "memory.max"
        return int((self.memory_dir / name).read_text())

    def read_pids_max(self) -> int:
        return int((self.dirs[0] / "pids.max").read_text())

    def pids(self) -> set[int]:
        """Host pids of every process in the dyno's cgroups."""
        found: set[int] = set()
        for procs in self.procs_files:
            try:
                text = Path(procs).read_text()
            except FileNotFoundError:
                continue
            found.update(int(pid) for pid in text.split())
        return found

    def remove(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for path in reversed(self.dirs):
            while path.exists():
                try:
                    path.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    # Busy until the kernel has finished tearing down the last task.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def __enter__(self) -> Cgroups:
        try:
            self.create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def join(self) -> None:
        """Move the calling process into these cgroups (a child's preexec_fn, say)."""
        for procs in self.procs_files:
            with open(procs, "w") as file:
                file.write(str(os.getpid()))

    def memory_stat(self) -> dict[str, int]:
        """The memory cgroup's memory.stat as numbers."""
        text = (self.memory_dir / "memory.stat").read_text()
        return {key: int(value) for key, value in (line.split() for line in text.splitlines())}

    def memory_total(self) -> int:
        """rss + cache + swap, as the agent's memory_total counts them."""
        stat = self.memory_stat()
        if "total_rss" in stat:
            return stat["total_rss"] + stat["total_cache"] + stat.get("total_swap", 0)
        swap = self.memory_dir / "memory.swap.current"
        return stat["anon"] + stat["file"] + (int(swap.read_text()) if swap.exists() else 0)

    def oom_kills(self) -> int:
        """The OOM killer's count for this cgroup (v1 memory.oom_control, v2 memory.events)."""
        name = "memory.oom_control" if self.mode == "v1" else "memory.events"
        for line in (self.memory_dir / name).read_text().splitlines():
            key, value = line.split()
            if key == "oom_kill":
                return int(value)
        raise RuntimeError(f"no oom_kill count in {self.memory_dir / name}")
