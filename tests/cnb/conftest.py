"""Fixtures for the CNB tests: a download server, a stand-in CPython, a lifecycle, a reaper.

Each test ends, by pid, the orphans (agents) that appeared during it, also when it fails.
"""

from __future__ import annotations

import sys

import pytest

from support.paths import BUILDPACK_HELPERS, REPO
from support.subreaper import Subreaper

sys.path.insert(0, str(BUILDPACK_HELPERS))

import standalone_archive
from cnb_lifecycle import Lifecycle
from cnb_support import DownloadServer


@pytest.fixture
def download_server(tmp_path):
    root = tmp_path / "downloads"
    root.mkdir()
    server = DownloadServer(root, tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def standalone_python(download_server):
    """(url, sha256) of a stand-in CPython the download server serves."""
    name = "cpython-install_only.tar.gz"
    sha256 = standalone_archive.build(download_server.root / name)
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
        # The push dependencies come from PyPI on real builds; tests stay offline, so pip
        # fails fast and the build takes its documented "pushing will not work" path.
        "PIP_NO_INDEX": "1",
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


@pytest.fixture
def reaper():
    """This test process as the orphans' reaper, the way a dyno's PID 1 is."""
    try:
        watcher = Subreaper()
    except OSError as error:
        pytest.skip(f"cannot reap orphans here: {error}")
    try:
        yield watcher
    finally:
        watcher.close()
