"""The CNB tests' download server: the build tests' serve.py, run from Python."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from support.paths import BUILDPACK_HELPERS, SYSTEM_PYTHON
from support.processes import stop


class DownloadServer:
    """serve.py over ROOT on 127.0.0.1, in a child process that also stops by itself.

    `requests` lists the paths asked for, in order, from the log serve.py writes before it
    answers each one.
    """

    def __init__(self, root: Path, work_dir: Path) -> None:
        self.root = root
        self._log = work_dir / "requests.log"
        port_file = work_dir / "server.port"
        self._process = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(BUILDPACK_HELPERS / "serve.py"),
                *("--root", str(root), "--port-file", str(port_file), "--log", str(self._log)),
                *("--max-requests", "50", "--lifetime", "300"),
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        # serve.py moves the port file into place whole, once it listens.
        while not port_file.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("serve.py did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    @property
    def requests(self) -> list[str]:
        return self._log.read_text().splitlines()

    def stop(self) -> None:
        stop(self._process)
