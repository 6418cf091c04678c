"""Real endpoints for the push tests, all on 127.0.0.1 and all stopping by themselves.

- ``pushgateway``: Debian's prometheus-pushgateway binary on a free port, persistence off, for
  the whole session; stopped by its pid at the end, also when a test fails.
- ``promtool``: Prometheus's own linter, ``promtool check metrics``, from the same package.
- ``prometheus``: Debian's Prometheus server on a free port, scraping that Pushgateway every
  second (``honor_labels: true``, as the Pushgateway's docs ask), its storage in a temporary
  directory; started on first use, stopped by its pid at the end of the session.
- ``receiver``: an http.server on a free port whose answer to each request is scripted (a
  status, a hang, a slow drip, garbage); it records every request it reads.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from push_servers import PROMTOOL, Receiver, promtool_check_metrics

from support.network import free_port
from support.processes import stop

PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
PROMETHEUS = "/usr/bin/prometheus"


@dataclass
class Server:
    url: str
    pid: int


def _wait_ready(url: str, process: subprocess.Popen, within: float) -> None:
    name = process.args[0]
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not become ready")


def _serve(command: list[str], port: int, log: Path, within: float) -> Iterator[Server]:
    """Run one of Debian's Prometheus servers on 127.0.0.1:``port`` until the session ends,
    logging warnings to ``log``; stopped by its pid, also when a test fails."""
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--log.level=warn"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, within=within)
        yield Server(url, process.pid)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory) -> Iterator[Server]:
    if not os.access(PUSHGATEWAY, os.X_OK):
        pytest.skip("needs Debian's prometheus-pushgateway (bash tests/run installs it)")
    port = free_port()
    log = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    # One listen address on loopback only, and an empty persistence file: nothing listens
    # elsewhere and nothing is written to /var/lib.
    yield from _serve(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
        port,
        log,
        within=15,
    )


@pytest.fixture(scope="session")
def promtool():
    """``check(exposition)``: promtool check metrics over a text exposition."""
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("needs Debian's prometheus for promtool (bash tests/run installs it)")
    return promtool_check_metrics


@pytest.fixture(scope="session")
def prometheus(pushgateway, tmp_path_factory) -> Iterator[Server]:
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("needs Debian's prometheus (bash tests/run installs it)")
    folder = tmp_path_factory.mktemp("prometheus")
    gateway_address = pushgateway.url.removeprefix("http://")
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: pushgateway\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f"      - targets: ['{gateway_address}']\n"
    )
    port = free_port()
    yield from _serve(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port,
        folder / "prometheus.log",
        within=30,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def _resolver_options_restored(monkeypatch):
    # make_sink bounds name resolution through RES_OPTIONS in the process environment; each
    # test starts without it and leaves the session's environment as it found it.
    monkeypatch.delenv("RES_OPTIONS", raising=False)
