"""A healthy web process: binds $PORT on 127.0.0.1, answers every request, starts nothing.

It stops by itself after APP_SECONDS (default 600), so a forgotten dyno never runs forever.
"""

from __future__ import annotations

import http.server
import os
import time

from serving import deadline


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"web: {format % args}", flush=True)


def main() -> None:
    until = deadline()
    server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Hello)
    server.timeout = 0.5
    print(f"web: listening on 127.0.0.1:{os.environ['PORT']} pid={os.getpid()}", flush=True)
    while time.monotonic() < until:
        server.handle_request()


if __name__ == "__main__":
    main()
