"""Pushing samples to a metrics backend: an OTel collector (OTLP/HTTP JSON) or a Pushgateway.

Off unless ``DYNOSTAT_URL`` is set; then ``make_sink`` builds the sink the loop calls once per
tick. The HTTP stack (http.client, ssl) is imported only here, only then: it costs the
agent more memory than everything else it does (bench/bench_push.py), which an agent that
only prints lines must not pay.

Config vars:
    DYNOSTAT_URL            the endpoint; for OTLP the full URL (usually ending in /v1/metrics),
                            for the Pushgateway its base URL
    DYNOSTAT_PUSH_PROTOCOL  ``otlp`` (default) or ``pushgateway``
    DYNOSTAT_PUSH_HEADERS   ``Name=value,Name2=value2`` sent with every request; values may be
                            percent-encoded (``%2C`` for a comma), as in OTEL_EXPORTER_OTLP_HEADERS
    DYNOSTAT_PUSH_BUFFER    failed samples kept for re-sending, 0-1000 (default 30)

A bad value gives one ``at=error event=config_invalid`` line naming the variable and a safe
default (or push off). Header values and the URL are never printed: they hold credentials.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from ..numbers import parse_whole
from .sink import (
    DEFAULT_BUFFER,
    OtlpProtocol,
    PushgatewayProtocol,
    Sink,
    safe_endpoint,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..records import Report

__all__ = ["Sink", "make_sink", "parse_headers"]

PROTOCOLS = ("otlp", "pushgateway")
MAX_BUFFER = 1000

# An HTTP header name is an RFC 9110 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def _invalid(report: Report, var: str, **fields: object) -> None:
    report({"at": "error", "event": "config_invalid", "var": var, **fields})


def parse_headers(text: str, report: Report) -> dict[str, str]:
    """``Name=value,...`` as a dict; each bad entry is reported by position only and skipped.

    A bad entry is reported by its position, never its text: an entry missing its ``=`` may be
    a bare secret.
    """
    headers: dict[str, str] = {}
    for position, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue
        name, equals, value = entry.partition("=")
        name = name.strip()
        value = unquote(value.strip())
        if not equals:
            problem = "missing_equals"
        elif not _TOKEN.match(name):
            problem = "bad_name"
        elif not all(0x20 <= ord(char) < 0x7F for char in value):
            # Control characters could split the request's headers; anything past ASCII is
            # not sent the same way by every HTTP stack.
            problem = "bad_value"
        else:
            headers[name] = value
            continue
        _invalid(report, "DYNOSTAT_PUSH_HEADERS", entry=position, reason=problem, default="skipped")
    return headers


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: it raises when it is bad
    except ValueError:
        return "unparsable"
    if parts.scheme not in ("http", "https"):
        return "scheme_not_http"
    if not parts.hostname:
        return "no_host"
    return None


def _buffer_size(env: Mapping[str, str], report: Report) -> int:
    text = env.get("DYNOSTAT_PUSH_BUFFER", "")
    if not text.strip():
        return DEFAULT_BUFFER
    size = parse_whole(text, 0, MAX_BUFFER)
    if size is None:
        _invalid(report, "DYNOSTAT_PUSH_BUFFER", value=text[:40], default=DEFAULT_BUFFER)
        return DEFAULT_BUFFER
    return size


def make_sink(env: Mapping[str, str], interval: float, report: Report) -> Sink | None:
    """The sink ``env`` asks for, or None when push is off or cannot work here."""
    url = env.get("DYNOSTAT_URL", "").strip()
    if not url:
        return None
    problem = _url_problem(url)
    if problem is not None:
        # The value is not printed: a URL may carry user:password@ or a key in its query.
        _invalid(report, "DYNOSTAT_URL", reason=problem, default="push_off")
        return None

    protocol_name = env.get("DYNOSTAT_PUSH_PROTOCOL", "").strip().lower() or "otlp"
    if protocol_name not in PROTOCOLS:
        _invalid(
            report,
            "DYNOSTAT_PUSH_PROTOCOL",
            value=env.get("DYNOSTAT_PUSH_PROTOCOL", "")[:40],
            default="otlp",
        )
        protocol_name = "otlp"
    headers = parse_headers(env.get("DYNOSTAT_PUSH_HEADERS", ""), report)
    buffer_size = _buffer_size(env, report)

    try:
        # Deferred on purpose: only an agent that pushes pays for http.client and ssl.
        from .transport import HttpTransport  # noqa: PLC0415
    except ImportError as error:
        report(
            {
                "at": "error",
                "event": "push_unavailable",
                "reason": "dependency_missing",
                "module": getattr(error, "name", None) or "unknown",
            }
        )
        return None
    except Exception as error:  # noqa: BLE001 - an odd dependency must not stop the agent
        report(
            {
                "at": "error",
                "event": "push_unavailable",
                "reason": "dependency_unusable",
                "error": type(error).__name__,
            }
        )
        return None

    if protocol_name == "pushgateway":
        protocol = PushgatewayProtocol(url, env)
    else:
        protocol = OtlpProtocol(url, env, socket.gethostname(), time.time())
    return Sink(
        protocol,
        HttpTransport(headers),
        interval=interval,
        report=report,
        endpoint=safe_endpoint(url),
        buffer_size=buffer_size,
    )
