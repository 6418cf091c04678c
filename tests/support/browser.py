"""How the report's tests and its benchmark start Debian's Chromium: headless, with no way
out to the network."""

from __future__ import annotations

from support.network import free_port

CHROMIUM = "/usr/bin/chromium"


def offline_args() -> list[str]:
    """Chromium's flags for opening a page that must not reach the network: no background
    services, and every connection sent to a proxy on a loopback port nothing listens on,
    which refuses it."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--proxy-server=127.0.0.1:{free_port()}",
    ]
