"""The push's config vars, turned into one typed record (``PushSettings``) by ``config.load``.

Only imported when a push is asked for: checking a URL takes ``urllib.parse``, which an agent
that only prints lines must not pay 2.1 MB of memory for.

    DYNOSTAT_URL            the endpoint; for OTLP the full URL (usually ending in /v1/metrics),
                            for the Pushgateway its base URL
    DYNOSTAT_PUSH_PROTOCOL  ``otlp`` (default) or ``pushgateway``
    DYNOSTAT_PUSH_HEADERS   ``Name=value,Name2=value2`` sent with every request; values may be
                            percent-encoded (``%2C`` for a comma), as in OTEL_EXPORTER_OTLP_HEADERS
    DYNOSTAT_PUSH_BUFFER    failed samples kept for re-sending, 0-1000 (default 30)

A bad value gives one ``config_invalid`` line (built by ``config.invalid``) and a safe
default, or push off. Header values and the URL are never printed: they hold credentials.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..config import invalid
from ..numbers import parse_whole
from ..records import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..records import Fields

PROTOCOLS = ("otlp", "pushgateway")
DEFAULT_BUFFER = 30
MAX_BUFFER = 1000
# Far more than any API key needs, far less than a request's headers may carry.
MAX_HEADERS_BYTES = 16 * 1024
# An HTTP header name is an RFC 9110 token.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


class PushSettings(Frozen):
    """Where and how to push; every field valid by construction."""

    __slots__ = ("url", "protocol", "headers", "buffer_size")


def parse(values: Mapping[str, str]) -> tuple[PushSettings | None, list[Fields]]:
    """The settings the push variables ask for (None: push off), and their error lines."""
    errors: list[Fields] = []
    url = values.get("DYNOSTAT_URL", "").strip()
    if not url:
        return None, errors
    problem = url_problem(url)
    if problem is not None:
        # The value is not printed: a URL may carry user:password@ or a key in its query.
        errors.append(invalid("DYNOSTAT_URL", url, "push_off", "an http or https URL", problem))
        return None, errors

    protocol_text = values.get("DYNOSTAT_PUSH_PROTOCOL", "")
    protocol = protocol_text.strip().lower() or "otlp"
    if protocol not in PROTOCOLS:
        errors.append(
            invalid("DYNOSTAT_PUSH_PROTOCOL", protocol_text, "otlp", "otlp or pushgateway")
        )
        protocol = "otlp"
    headers = parse_headers(values.get("DYNOSTAT_PUSH_HEADERS", ""), errors)
    buffer_size = DEFAULT_BUFFER
    buffer_text = values.get("DYNOSTAT_PUSH_BUFFER", "")
    if buffer_text.strip():
        parsed = parse_whole(buffer_text, 0, MAX_BUFFER)
        if parsed is None:
            errors.append(
                invalid(
                    "DYNOSTAT_PUSH_BUFFER",
                    buffer_text,
                    str(DEFAULT_BUFFER),
                    f"whole number from 0 to {MAX_BUFFER}",
                )
            )
        else:
            buffer_size = parsed
    return PushSettings(url, protocol, headers, buffer_size), errors


def parse_headers(text: str, errors: list[Fields]) -> dict[str, str]:
    """``Name=value,...`` as a dict; each bad entry is named by position only and skipped.

    A bad entry is reported by its position, never its text: an entry missing its ``=`` may be
    a bare secret.
    """
    headers: dict[str, str] = {}
    if len(text.encode("utf-8", "replace")) > MAX_HEADERS_BYTES:
        errors.append(
            invalid("DYNOSTAT_PUSH_HEADERS", text, "none", f"at most {MAX_HEADERS_BYTES} bytes")
        )
        return headers
    for position, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue
        name, equals, value = entry.partition("=")
        name = name.strip()
        value = unquote(value.strip())
        if not equals:
            problem = "missing_equals"
        elif not name or not set(name) <= _TOKEN_CHARS:
            problem = "bad_name"
        elif not all(0x20 <= ord(char) < 0x7F for char in value):
            # Control characters could split the request's headers; anything past ASCII is
            # not sent the same way by every HTTP stack.
            problem = "bad_value"
        else:
            headers[name] = value
            continue
        fields = invalid("DYNOSTAT_PUSH_HEADERS", entry, "skipped", "Name=value", problem)
        fields["entry"] = position
        errors.append(fields)
    return headers


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be pushed to, as a short code; None when it can."""
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
