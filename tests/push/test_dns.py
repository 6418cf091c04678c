"""A hung DNS server costs a push about a second, not glibc's default 10 s per tick."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dynostat.push import make_sink

AGENT_DIR = str(Path(__file__).resolve().parents[2] / "agent")

SEND_ONCE = """
import json, time
from dynostat.push import make_sink
from dynostat.sample import Sample
reports = []
sink = make_sink({"DYNOSTAT_URL": "https://collector.example.com/v1/metrics"}, 20, reports.append)
started = time.monotonic()
sink.send(Sample(wall_time=time.time()), "web.1", "dyno")
print(json.dumps({"seconds": time.monotonic() - started, "reports": reports}))
"""


@pytest.fixture
def silent_name_server():
    """A UDP socket on 127.0.0.2:53 that takes every query and never answers one."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to point a private /etc/resolv.conf at it")
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.2", 53))
    try:
        yield "127.0.0.2"
    finally:
        server.close()


def test_a_name_server_that_never_answers_fails_the_push_within_about_a_second(
    silent_name_server, tmp_path
):
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(f"nameserver {silent_name_server}\n")
    env = {key: value for key, value in os.environ.items() if key != "RES_OPTIONS"}
    env["PYTHONPATH"] = AGENT_DIR
    # A private mount namespace: only this child sees the silent name server.
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c",
         'mount --bind "$0" /etc/resolv.conf && exec "$1" -c "$2"',
         str(resolv_conf), sys.executable, SEND_ONCE],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert [(r["event"], r["reason"]) for r in outcome["reports"]] == [("push_failed", "dns")]
    assert outcome["seconds"] < 1.9


def test_resolver_options_the_dyno_set_are_kept(monkeypatch):
    monkeypatch.setenv("RES_OPTIONS", "rotate timeout:3")
    make_sink({"DYNOSTAT_URL": "https://collector.example.com/"}, 20, print)
    assert os.environ["RES_OPTIONS"] == "rotate timeout:3 attempts:1"


def test_an_address_needs_no_resolver_options(monkeypatch):
    monkeypatch.delenv("RES_OPTIONS", raising=False)
    make_sink({"DYNOSTAT_URL": "http://[::1]:4318/v1/metrics"}, 20, print)
    make_sink({"DYNOSTAT_URL": "http://127.0.0.1:4318/v1/metrics"}, 20, print)
    assert "RES_OPTIONS" not in os.environ
