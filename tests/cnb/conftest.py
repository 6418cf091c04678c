"""Fixtures for the CNB tests: a download server, a stand-in CPython, a lifecycle, a reaper.

Processes: every exec.d program is waited for by the lifecycle stand-in; the agents they start
are orphans by design, and this process becomes their reaper (PR_SET_CHILD_SUBREAPER), the
way a dyno's PID 1 is. Each test kills, by pid, the orphans that appeared during it.
"""

from __future__ import annotations

import ctypes
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

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cnb_lifecycle import Lifecycle

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


@pytest.fixture
def download_server(tmp_path):
    root = tmp_path / "downloads"
    root.mkdir()
    server = DownloadServer(root)
    try:
        yield server
    finally:
        server.stop()


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


@pytest.fixture
def standalone_python(download_server):
    """(url, sha256) of a stand-in CPython the download server serves."""
    name = "cpython-install_only.tar.gz"
    sha256 = build_standalone_tarball(download_server.root / name)
    return f"{download_server.url}/{name}", sha256


@pytest.fixture
def lifecycle(tmp_path, standalone_python) -> Lifecycle:
    app_dir = tmp_path / "workspace"
    app_dir.mkdir()
    (app_dir / "Procfile").write_text("web: sleep 3600\n")
    base_env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
    }
    (tmp_path / "home").mkdir()
    life = Lifecycle(
        buildpack_dir=REPO,
        workspace=tmp_path / "cnb",
        app_dir=app_dir,
        base_env=base_env,
    )
    url, sha256 = standalone_python
    life.set_build_env(DYNOSTAT_PYTHON_URL=url, DYNOSTAT_PYTHON_SHA256=sha256)
    return life


def _children_of(pid: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
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
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


@pytest.fixture
def reaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available here")
    watcher = Reaper()
    try:
        yield watcher
    finally:
        watcher.end_all()
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
