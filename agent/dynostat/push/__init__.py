"""Pushing samples to a metrics backend: an OTel collector (OTLP/HTTP) or a Pushgateway.

Off unless ``DYNOSTAT_URL`` or ``DYNOSTAT_PUSH_PROTOCOL=otlp`` is set (see ``settings`` for the
variables); then ``make_sink``
builds the sink the loop calls once per tick. The HTTP stack (http.client, ssl) is imported
only here, only then: it costs the agent more memory than everything else it does
(bench/bench_push.py), which an agent that only prints lines must not pay.
"""

from __future__ import annotations

import socket
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Dyno
    from ..records import Report
    from .settings import PushSettings
    from .sink import Sink

__all__ = ["make_sink"]


def make_sink(settings: PushSettings, dyno: Dyno, interval: float, report: Report) -> Sink | None:
    """The sink ``settings`` ask for, or None when it cannot work here (said in one line).

    The package imports nothing until now (``config`` imports ``push.settings`` on its own),
    so a module the push needs that is missing or broken costs the push, never the agent.
    """
    try:
        from .sink import OtlpProtocol, PushgatewayProtocol, Sink, safe_endpoint  # noqa: PLC0415
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

    if settings.protocol == "pushgateway":
        protocol = PushgatewayProtocol(settings.url, dyno)
    else:
        protocol = OtlpProtocol(
            settings.url,
            dyno,
            socket.gethostname(),
            time.time(),
            encoding=settings.encoding,
            service_name=settings.service_name,
            resource=settings.resource,
        )
    headers = dict(settings.headers)
    compress = None
    if settings.compression == "gzip":
        compress = gzip_compressor()
        headers["Content-Encoding"] = "gzip"
    return Sink(
        protocol,
        HttpTransport(headers),
        interval=interval,
        report=report,
        endpoint=safe_endpoint(settings.url),
        buffer_size=settings.buffer_size,
        max_timeout=settings.timeout,
        compress=compress,
    )


def gzip_compressor():
    """A function that gzips a request body (imported only when compression is asked for)."""
    import zlib  # noqa: PLC0415

    def compress(body: bytes) -> bytes:
        # wbits 31: a deflate stream in a gzip wrapper (zlib.compress takes wbits only from
        # Python 3.11, and the gzip module costs more memory for the same bytes).
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        return compressor.compress(body) + compressor.flush()

    return compress
