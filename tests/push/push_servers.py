"""Test endpoints on 127.0.0.1 that stop by themselves: a scripted HTTP(S) receiver; and
what the tests ask the real Prometheus tools (the server's query API, promtool).

The receiver answers each request from a script (a status, a hang, a slow drip, garbage
bytes) and records every request it reads, with the time its body arrived.
"""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

# Longest any receiver may live: its loop ends by itself after this.
SERVER_LIFETIME = 120.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float  # time.monotonic() when the body was read


@dataclass
class Reply:
    """What the receiver does with one request."""

    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    hang: float = 0.0  # seconds to hold the request without a byte of answer
    drip_every: float = 0.0  # seconds between single bytes of the whole answer
    garbage: bytes = b""  # raw bytes sent instead of an HTTP answer


class Receiver:
    """An HTTP endpoint on 127.0.0.1 answering from a script; see the module docstring."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []  # one per request, in order; then ``default``
        self.default = Reply()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # an idle keep-alive connection is closed after this

            def log_message(self, *args):  # quiet: pytest shows failures, not access logs
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                reply = receiver._next(
                    Received(self.command, self.path, dict(self.headers), body, time.monotonic())
                )
                receiver._answer(self, reply)

            do_POST = _serve
            do_PUT = _serve

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.timeout = 0.05
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        end = time.monotonic() + SERVER_LIFETIME
        while not self._stopping.is_set() and time.monotonic() < end:
            self._server.handle_request()
        self._server.server_close()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self.script.pop(0) if self.script else self.default

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _answer(self, handler, reply: Reply) -> None:
        if reply.hang:
            self._pause(reply.hang)
        if reply.garbage:
            handler.wfile.write(reply.garbage)
            handler.close_connection = True
            return
        head = f"HTTP/1.1 {reply.status} Scripted\r\n"
        headers = {"Content-Length": str(len(reply.body)), **reply.headers}
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        answer = head.encode("latin-1") + reply.body
        if not reply.drip_every:
            handler.wfile.write(answer)
            return
        for index in range(len(answer)):
            if self._stopping.is_set():
                break
            handler.wfile.write(answer[index : index + 1])
            handler.wfile.flush()
            self._pause(reply.drip_every)
        handler.close_connection = True

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)


PROMTOOL = "/usr/bin/promtool"


def prometheus_query(prometheus_url: str, promql: str) -> list[dict]:
    """The result of an instant query through Prometheus's HTTP API."""
    query = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=5) as answer:
        document = json.load(answer)
    assert document["status"] == "success", document
    return document["data"]["result"]


def wait_for_query(prometheus_url: str, promql: str, done, within: float = 30.0) -> list[dict]:
    """Query until ``done(result)`` holds (Prometheus scrapes once a second), then the result."""
    give_up = time.monotonic() + within
    while True:
        result = prometheus_query(prometheus_url, promql)
        if done(result) or time.monotonic() > give_up:
            return result
        time.sleep(0.2)


def promtool_check_metrics(exposition: bytes) -> subprocess.CompletedProcess:
    """``promtool check metrics`` over a text exposition: exit 0 and no output when clean."""
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
        check=False,
    )
