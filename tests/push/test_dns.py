"""Name resolution is part of the push's budget: hung name servers cost a push, never the loop.

Each test runs in a private mount namespace whose /etc/resolv.conf and /etc/hosts point at
name servers the test runs on 127.0.0.x:53: silent ones that take every query and never
answer, and a real one (name_servers.NameServer) that answers with a TTL and counts questions.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from name_servers import NameServer
from push_servers import Receiver

from support.paths import AGENT, TESTS

PUSH_TESTS_DIR = str(Path(__file__).resolve().parent)
SILENT_SERVERS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
ANSWERING_SERVER = "127.0.0.5"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to give the agent a private /etc/resolv.conf",
)

# One push from a sink built as the agent builds it, at a 2 s interval (a 1 s budget).
SEND_ONCE = """
import json, sys, time
from push_sample import sink_from_env
from dynostat.sample import Sample
from support.reports import Reports
reports = Reports()
sink = sink_from_env({"DYNOSTAT_URL": sys.argv[1]}, 2, reports)
times = []
for _ in range(int(sys.argv[2])):
    started = time.monotonic()
    sink.send(Sample(wall_time=time.time()), "web.1", "dyno")
    times.append(time.monotonic() - started)
print(json.dumps({"seconds": times, "reports": list(reports)}))
"""


class SilentNameServers:
    """UDP sockets on port 53 that read every query and never answer."""

    def __init__(self, addresses):
        self.sockets = []
        for address in addresses:
            server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            server.bind((address, 53))
            self.sockets.append(server)

    def close(self):
        for server in self.sockets:
            server.close()


@pytest.fixture
def silent_name_servers():
    servers = SilentNameServers(SILENT_SERVERS)
    try:
        yield SILENT_SERVERS
    finally:
        servers.close()


def in_private_resolver(tmp_path, resolv_conf: str, hosts: str, command: list[str], **popen):
    """Run ``command`` with its own /etc/resolv.conf and /etc/hosts (a mount namespace)."""
    (tmp_path / "resolv.conf").write_text(resolv_conf)
    (tmp_path / "hosts").write_text(hosts)
    script = (
        'mount --bind "$0/resolv.conf" /etc/resolv.conf && '
        'mount --bind "$0/hosts" /etc/hosts && exec "$@"'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(AGENT), str(TESTS), PUSH_TESTS_DIR])}
    return ["unshare", "--mount", "sh", "-c", script, str(tmp_path), *command], env


def send_pushes(tmp_path, url: str, count: int, resolv_conf: str, hosts: str = "") -> dict:
    command, env = in_private_resolver(
        tmp_path, resolv_conf, hosts, [sys.executable, "-c", SEND_ONCE, url, str(count)]
    )
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nameservers(*addresses: str) -> str:
    return "".join(f"nameserver {address}\n" for address in addresses)


def test_three_silent_name_servers_cost_one_push_its_budget_and_say_dns(
    silent_name_servers, tmp_path
):
    outcome = send_pushes(
        tmp_path, "https://collector.example.com/v1/metrics", 2, nameservers(*silent_name_servers)
    )

    # glibc's resolver would wait 1 s per name server (3 s); the budget at 2 s is 1 s.
    assert all(0.9 <= seconds < 1.35 for seconds in outcome["seconds"]), outcome
    assert [(r["event"], r["reason"]) for r in outcome["reports"]] == [("push_failed", "dns")]
    assert outcome["reports"][0]["buffered"] == 1


def test_samples_keep_their_interval_while_every_name_server_hangs(silent_name_servers, tmp_path):
    command, env = in_private_resolver(
        tmp_path,
        nameservers(*silent_name_servers),
        "",
        [sys.executable, "-m", "dynostat", "--interval", "2", "--count", "4"],
    )
    env.update(DYNO="web.1", DYNOSTAT_URL="https://collector.example.com/v1/metrics")
    arrivals = []
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as agent:
        try:
            for line in agent.stdout:
                if "sample#dynostat.tasks=" in line:
                    arrivals.append(time.monotonic())
        finally:
            agent.wait(timeout=30)
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert len(arrivals) == 4
    assert all(1.7 <= gap <= 2.4 for gap in gaps), gaps


def test_a_name_the_name_server_answers_is_pushed_to_and_looked_up_once_per_ttl(tmp_path):
    server = NameServer(ANSWERING_SERVER, {("collector.test", "A"): ["127.0.0.1"]}, ttl=300)
    receiver = Receiver()
    try:
        outcome = send_pushes(
            tmp_path,
            f"http://collector.test:{receiver.port}/v1/metrics",
            3,
            nameservers(ANSWERING_SERVER),
        )
    finally:
        receiver.stop()
        server.close()

    assert outcome["reports"] == []
    assert len(receiver.requests) == 3
    assert receiver.requests[0].headers["Host"] == f"collector.test:{receiver.port}"
    # One A query, answered with a 300 s TTL, serves all three pushes.
    assert server.questions == [("udp", "collector.test", "A")]


def test_etc_hosts_is_read_before_any_name_server(silent_name_servers, tmp_path):
    receiver = Receiver()
    try:
        outcome = send_pushes(
            tmp_path,
            f"http://collector.internal:{receiver.port}/v1/metrics",
            2,
            nameservers(*silent_name_servers),
            hosts="127.0.0.1 localhost\n127.0.0.1 collector.internal  # the dyno's own entry\n",
        )
    finally:
        receiver.stop()

    assert outcome["reports"] == []
    assert len(receiver.requests) == 2
    assert all(seconds < 0.5 for seconds in outcome["seconds"])


def test_an_address_in_the_url_needs_no_name_server(silent_name_servers, tmp_path):
    receiver = Receiver()
    try:
        outcome = send_pushes(
            tmp_path, receiver.url + "/v1/metrics", 1, nameservers(*silent_name_servers)
        )
    finally:
        receiver.stop()

    assert outcome["reports"] == []
    assert len(receiver.requests) == 1
