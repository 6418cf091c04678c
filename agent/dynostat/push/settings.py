"""The push's config vars, turned into one typed record (``PushSettings``) by ``config.load``.

Only imported when a push is asked for: checking a URL takes ``urllib.parse``, which an agent
that only prints lines must not pay 2.1 MB of memory for.

    DYNOSTAT_URL              the endpoint; for OTLP the full URL (usually ending in
                              /v1/metrics), for the Pushgateway its base URL
    DYNOSTAT_PUSH_PROTOCOL    ``otlp`` (default) or ``pushgateway``
    DYNOSTAT_PUSH_ENCODING    OTLP bodies as ``protobuf`` (default) or ``json``
    DYNOSTAT_PUSH_COMPRESSION ``gzip`` or ``none`` (default)
    DYNOSTAT_PUSH_HEADERS     ``Name=value,Name2=value2`` sent with every request; values may
                              be percent-encoded (``%2C`` for a comma), as in
                              OTEL_EXPORTER_OTLP_HEADERS
    DYNOSTAT_PUSH_BUFFER      failed samples kept for re-sending, 0-1000 (default 30)

With ``DYNOSTAT_PUSH_PROTOCOL=otlp`` and ``DYNOSTAT_URL`` unset, the push goes where the app's
own OpenTelemetry settings point (``config.PUSH_VARS`` lists them): the endpoint, headers,
protocol, compression and timeout of ``OTEL_EXPORTER_OTLP_METRICS_*``, else of
``OTEL_EXPORTER_OTLP_*``, else the OTLP defaults; ``DYNOSTAT_PUSH_*`` set beside them still
win, and ``OTEL_SDK_DISABLED=true`` turns that push off. The app's OpenTelemetry settings
alone never turn pushing on. Every OTLP push names its resource with ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (see ``otlp``).

A bad value gives one ``config_invalid`` line (built by ``config.invalid``) and a safe default:
the next variable in that order, the default, or push off for a bad ``DYNOSTAT_URL``. Header
values and URLs are never printed: they hold credentials.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from ..config import invalid
from ..numbers import parse_whole
from ..records import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..records import Fields

PROTOCOLS = ("otlp", "pushgateway")
COMPRESSIONS = ("gzip", "none")
DEFAULT_BUFFER = 30
MAX_BUFFER = 1000
# Far more than any API key or resource needs, far less than a request may carry; the
# resource goes with every push.
MAX_HEADERS_BYTES = 16 * 1024
MAX_RESOURCE_BYTES = 16 * 1024
# An HTTP header name is an RFC 9110 token.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

# Where OTLP exporters send metrics when nothing says otherwise (the OTLP exporter spec).
OTLP_DEFAULT_ENDPOINT = "http://localhost:4318"
OTLP_METRICS_PATH = "v1/metrics"


class PushSettings(Frozen):
    """Where and how to push; every field valid by construction.

    ``timeout`` is the longest one push may take in seconds (None: the agent's own budget
    alone); ``service_name`` and ``resource`` are ``OTEL_SERVICE_NAME`` and the pairs of
    ``OTEL_RESOURCE_ATTRIBUTES``.
    """

    __slots__ = (
        "url",
        "protocol",
        "headers",
        "buffer_size",
        "encoding",
        "compression",
        "timeout",
        "service_name",
        "resource",
    )
    _defaults = {  # noqa: RUF012 - a per-class constant, never mutated
        "encoding": "protobuf",
        "compression": "none",
        "timeout": None,
        "service_name": "",
        "resource": (),
    }


def _set(values: Mapping[str, str], var: str) -> str | None:
    """The variable's text, or None when it is unset or blank (blank counts as unset)."""
    text = values.get(var, "")
    return text if text.strip() else None


def parse(values: Mapping[str, str]) -> tuple[PushSettings | None, list[Fields]]:
    """The settings the push variables ask for (None: push off), and their lines."""
    errors: list[Fields] = []
    protocol_text = _set(values, "DYNOSTAT_PUSH_PROTOCOL")
    protocol = protocol_text.strip().lower() if protocol_text is not None else None
    url_text = _set(values, "DYNOSTAT_URL")
    if url_text is not None:
        url = url_text.strip()
        problem = url_problem(url)
        if problem is not None:
            # The value is not printed: a URL may carry user:password@ or a key in its query.
            errors.append(invalid("DYNOSTAT_URL", url, "push_off", "an http or https URL", problem))
            return None, errors
        # The app's exporter settings are for the app's own endpoint, not this one.
        exporter: Mapping[str, str] = {}
    elif protocol == "otlp":
        exporter = values
        if _sdk_disabled(values, errors):
            errors.append({"at": "info", "event": "push_off", "reason": "otel_sdk_disabled"})
            return None, errors
        url = _otel_endpoint(values, errors)
    else:
        return None, errors

    if protocol is None:
        protocol = "otlp"
    elif protocol not in PROTOCOLS:
        errors.append(
            invalid("DYNOSTAT_PUSH_PROTOCOL", protocol_text, "otlp", "otlp or pushgateway")
        )
        protocol = "otlp"
    header_chain = [("DYNOSTAT_PUSH_HEADERS", values), *_exporter_chain(exporter, "HEADERS")]
    headers_var = next(
        (var for var, source in header_chain if _set(source, var) is not None),
        "DYNOSTAT_PUSH_HEADERS",
    )
    headers = parse_headers(values.get(headers_var, ""), errors, headers_var)
    compression = _first_valid(
        [("DYNOSTAT_PUSH_COMPRESSION", values), *_exporter_chain(exporter, "COMPRESSION")],
        _parse_compression,
        "none",
        lambda var: "gzip or none",
        errors=errors,
    )
    settings = {
        "url": url,
        "protocol": protocol,
        "headers": headers,
        "buffer_size": _buffer_size(values, errors),
        "compression": compression,
    }
    if protocol == "otlp":
        settings["encoding"] = _first_valid(
            [("DYNOSTAT_PUSH_ENCODING", values), *_exporter_chain(exporter, "PROTOCOL")],
            _parse_encoding,
            "protobuf",
            _expected_encoding,
            errors=errors,
            show=_shown_encoding,
            reason=_grpc_reason,
        )
        settings["timeout"] = _first_valid(
            _exporter_chain(exporter, "TIMEOUT"),
            _parse_timeout,
            None,
            lambda var: "whole milliseconds, 0 for no limit of its own",
            errors=errors,
            show=_shown_timeout,
        )
        settings["service_name"] = _service_name(values, errors)
        settings["resource"] = _resource(values, errors)
    return PushSettings(**settings), errors


def _exporter_chain(exporter: Mapping[str, str], option: str) -> list:
    """The per-signal and the general variable of one exporter option, in that order."""
    if not exporter:
        return []
    return [
        (f"OTEL_EXPORTER_OTLP_METRICS_{option}", exporter),
        (f"OTEL_EXPORTER_OTLP_{option}", exporter),
    ]


def _first_valid(
    chain: list,
    parse: Callable[[str], object],
    default: object,
    expected: Callable[[str], str],
    *,
    errors: list[Fields],
    show: Callable[[str, object], str] | None = None,
    reason: Callable[[str], str | None] | None = None,
) -> object:
    """The value of the first variable of ``chain`` that is set and valid, else ``default``.

    Each variable set to a bad value before it gives one line, whose default is the value
    used instead: a bad value is ignored, as if it were unset. ``reason`` may name why a bad
    value is bad.
    """
    bad = []
    value = default
    for var, source in chain:
        text = _set(source, var)
        if text is None:
            continue
        parsed = parse(text)
        if parsed is None:
            bad.append((var, text))
            continue
        value = parsed
        break
    for var, text in bad:
        shown = show(var, value) if show is not None else str(value)
        why = reason(text) if reason is not None else None
        errors.append(invalid(var, text, shown, expected(var), why))
    return value


def _grpc_reason(text: str) -> str | None:
    """gRPC is named as what it is: an OTLP transport the push does not speak."""
    return "grpc_not_supported" if text.strip().lower() == "grpc" else None


def _expected_encoding(var: str) -> str:
    return "http/protobuf or http/json" if var.startswith("OTEL_") else "protobuf or json"


def _shown_encoding(var: str, encoding: object) -> str:
    return f"http/{encoding}" if var.startswith("OTEL_") else str(encoding)


def _shown_timeout(var: str, timeout: object) -> str:
    if timeout is None:
        return "agent_budget"
    return "0" if timeout == float("inf") else str(round(float(timeout) * 1000))  # type: ignore[arg-type]


def _parse_encoding(text: str) -> str | None:
    lowered = text.strip().lower()
    return {
        "protobuf": "protobuf",
        "json": "json",
        "http/protobuf": "protobuf",
        "http/json": "json",
    }.get(lowered)


def _parse_compression(text: str) -> str | None:
    lowered = text.strip().lower()
    return lowered if lowered in COMPRESSIONS else None


def _parse_timeout(text: str) -> float | None:
    # Milliseconds, as the OTLP exporter spec says (0: no limit of its own, so the agent's
    # budget alone); a negative or fractional value is not one.
    milliseconds = parse_whole(text, 0, 2**63 - 1)
    if milliseconds is None:
        return None
    return float("inf") if milliseconds == 0 else milliseconds / 1000


def _sdk_disabled(values: Mapping[str, str], errors: list[Fields]) -> bool:
    text = _set(values, "OTEL_SDK_DISABLED")
    if text is None:
        return False
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        # The SDK spec: only "true" disables; anything else is false, with a warning.
        errors.append(invalid("OTEL_SDK_DISABLED", text, "false", "true or false"))
    return lowered == "true"


def _otel_endpoint(values: Mapping[str, str], errors: list[Fields]) -> str:
    """Where the app's OTel settings send metrics: the per-signal endpoint as it is, else the
    general one with ``v1/metrics`` appended to its path, else the OTLP default."""
    for var in ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        text = _set(values, var)
        if text is None:
            continue
        url = text.strip()
        problem = url_problem(url)
        if problem is None:
            return url if var.endswith("_METRICS_ENDPOINT") else metrics_url(url)
        fallback = (
            "OTEL_EXPORTER_OTLP_ENDPOINT"
            if var.endswith("_METRICS_ENDPOINT") and _set(values, "OTEL_EXPORTER_OTLP_ENDPOINT")
            else OTLP_DEFAULT_ENDPOINT
        )
        errors.append(invalid(var, url, fallback, "an http or https URL", problem))
    return metrics_url(OTLP_DEFAULT_ENDPOINT)


def metrics_url(base: str) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` as the metrics URL: ``v1/metrics`` relative to it.

    The spec's own wording is to make sure the base ends with ``/`` and append; done on the
    path, so a query the base carries stays a query.
    """
    parts = urlsplit(base)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit(parts._replace(path=path + OTLP_METRICS_PATH))


def _buffer_size(values: Mapping[str, str], errors: list[Fields]) -> int:
    return _first_valid(
        [("DYNOSTAT_PUSH_BUFFER", values)],
        lambda text: parse_whole(text, 0, MAX_BUFFER),
        DEFAULT_BUFFER,
        lambda var: f"whole number from 0 to {MAX_BUFFER}",
        errors=errors,
    )


def _service_name(values: Mapping[str, str], errors: list[Fields]) -> str:
    text = _set(values, "OTEL_SERVICE_NAME")
    if text is None:
        return ""
    if len(text.encode("utf-8", "replace")) > MAX_RESOURCE_BYTES:
        errors.append(
            invalid(
                "OTEL_SERVICE_NAME",
                text,
                "HEROKU_APP_NAME",
                f"at most {MAX_RESOURCE_BYTES} bytes",
            )
        )
        return ""
    return text.strip()


def _resource(values: Mapping[str, str], errors: list[Fields]) -> tuple[tuple[str, str], ...]:
    """The pairs of ``OTEL_RESOURCE_ATTRIBUTES``, or none at all when any of it is bad.

    ``key1=value1,key2=value2``, keys and values percent-decoded and trimmed. On any error the
    whole value is discarded with one line, as the resource SDK spec asks (so a half-read list
    never mislabels a dyno's metrics).
    """
    text = _set(values, "OTEL_RESOURCE_ATTRIBUTES")
    if text is None:
        return ()
    problem = None
    pairs: list[tuple[str, str]] = []
    if len(text.encode("utf-8", "replace")) > MAX_RESOURCE_BYTES:
        problem = "too_long"
    else:
        for entry in text.split(","):
            if not entry.strip():
                continue
            key, equals, value = entry.partition("=")
            key, value = _percent_decoded(key.strip()), _percent_decoded(value.strip())
            if not equals:
                problem = "missing_equals"
            elif key is None or value is None:
                problem = "bad_percent_encoding"
            elif not key:
                problem = "empty_key"
            else:
                pairs.append((key, value))
                continue
            break
    if problem is not None:
        errors.append(
            invalid(
                "OTEL_RESOURCE_ATTRIBUTES",
                text,
                "none",
                "key1=value1,key2=value2 (percent-encoded)",
                problem,
            )
        )
        return ()
    return tuple(pairs)


def _percent_decoded(text: str) -> str | None:
    """``text`` with its ``%XX`` escapes decoded as UTF-8; None when one is malformed."""
    index = text.find("%")
    while index != -1:
        if len(text) < index + 3 or not set(text[index + 1 : index + 3]) <= _HEX_DIGITS:
            return None
        index = text.find("%", index + 3)
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None


def parse_headers(
    text: str, errors: list[Fields], var: str = "DYNOSTAT_PUSH_HEADERS"
) -> dict[str, str]:
    """``Name=value,...`` as a dict; each bad entry is named by position only and skipped.

    A bad entry is reported by its position, never its text: an entry missing its ``=`` may be
    a bare secret.
    """
    headers: dict[str, str] = {}
    if len(text.encode("utf-8", "replace")) > MAX_HEADERS_BYTES:
        errors.append(invalid(var, text, "none", f"at most {MAX_HEADERS_BYTES} bytes"))
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
        fields = invalid(var, entry, "skipped", "Name=value", problem)
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
