#!/usr/bin/env python3
"""Serves a directory over HTTP on 127.0.0.1 for the build tests, and stops by itself.

Every request path is appended to a log file, so a test can prove a warm rebuild asked for
nothing. Paths under /truncated/ serve the first half of the file while announcing its full
length, the way a dropped connection looks to a client.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    log_path = ""

    def do_GET(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(self.path + "\n")
        if self.path.startswith("/truncated/"):
            self.send_truncated(self.path[len("/truncated/") :])
            return
        super().do_GET()

    def send_truncated(self, name: str) -> None:
        path = os.path.join(self.directory, name)
        with open(path, "rb") as served:
            body = served.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Keeps the test output clean; the request log file records what matters."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--max-requests", type=int, default=100)
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args()

    Handler.log_path = args.log
    open(args.log, "a", encoding="utf-8").close()
    handler = functools.partial(Handler, directory=args.root)
    with http.server.HTTPServer(("127.0.0.1", 0), handler) as server:
        server.timeout = 0.2
        port_tmp = args.port_file + ".tmp"
        with open(port_tmp, "w", encoding="utf-8") as port_file:
            port_file.write(str(server.server_address[1]))
        os.replace(port_tmp, args.port_file)
        deadline = time.monotonic() + args.lifetime
        served = 0
        while served < args.max_requests and time.monotonic() < deadline:
            before = os.path.getsize(args.log)
            server.handle_request()
            if os.path.getsize(args.log) != before:
                served += 1


if __name__ == "__main__":
    main()
