"""Helpers for the CNB tests: a download server, a stand-in CPython, an orphan reaper.

Processes: the agents exec.d starts are orphans by design; during a test this process is
their reaper (PR_SET_CHILD_SUBREAPER), the way a dyno's PID 1 is, so it can find them and
end them by pid.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import signal
import sys
import tarfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PR_SET_CHILD_SUBREAPER = 36
SYSTEM_PYTHON = Path("/usr/bin/python3")  # readable by any user, like a dyno's would be


class DownloadServer:
    """Serves files from a directory on 127.0.0.1 and logs every request path.

    The loop is bounded twice: by a request budget and by a stop flag the fixture sets, so it
    ends by itself even if a test forgets it.
    """

    def __init__(self, root: Path, max_requests: int = 50) -> None:
        self.root = root
        self.requests: list[str] = []
        self._stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                path = server.root / self.path.lstrip("/")
                if not path.is_file() or ".." in self.path:
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                return

        self._httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.timeout = 0.2
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

        def loop() -> None:
            handled = 0
            while handled < max_requests and not self._stop.is_set():
                before = len(self.requests)
                self._httpd.handle_request()
                handled += len(self.requests) - before

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._httpd.server_close()


def build_standalone_tarball(destination: Path) -> str:
    """A tarball shaped like python-build-standalone's install_only build: python/bin/python3
    and python/lib/python3.X/, here wrapping this machine's Debian python3 so it is small.
    Returns its sha256."""
    staging = destination.parent / "standalone-staging"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    bin_dir = staging / "python" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / f"python{version}"
    wrapper.write_text(f'#!/bin/sh\nexec {SYSTEM_PYTHON} "$@"\n')
    wrapper.chmod(0o755)
    (bin_dir / "python3").symlink_to(wrapper.name)
    stdlib = staging / "python" / "lib" / f"python{version}"
    stdlib.mkdir(parents=True)
    (stdlib / "os.py").write_text("# the stand-in's stdlib lives in the system python\n")
    (staging / "python" / "include").mkdir()
    with tarfile.open(destination, "w:gz") as tar:
        tar.add(staging / "python", arcname="python")
    shutil.rmtree(staging)
    return hashlib.sha256(destination.read_bytes()).hexdigest()


def _children_of(pid: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            # Bytes: any process of the machine may have a name that is not UTF-8.
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[1]) == pid:  # field 4 of stat(5), ppid, after the comm
            children.add(int(entry))
    return children


class Reaper:
    """This test process as the orphans' reaper; lists and ends the ones a test left."""

    def __init__(self) -> None:
        self.before = _children_of(os.getpid())

    def orphans(self) -> set[int]:
        """Processes reparented to us since the test began (the agents)."""
        return _children_of(os.getpid()) - self.before

    def wait_for_orphans(self, count: int, timeout: float = 5.0) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {pid for pid in self.orphans() if not _is_zombie(pid)}
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return {pid for pid in self.orphans() if not _is_zombie(pid)}

    def end_all(self) -> None:
        for pid in self.orphans():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 :].startswith(b"Z")
