"""The push sink: one bounded send per tick, a bounded buffer, and errors that never escape.

Everything happens inside the agent's one loop, so a slow or broken endpoint must never cost
the log lines their schedule. One ``send`` spends at most ``timeout`` seconds in total, however
many buffered samples it re-sends and however the endpoint misbehaves (refusing, hanging,
dripping bytes). Samples that could not be delivered wait in a buffer and are re-sent oldest
first on later ticks; when the buffer is full the oldest is dropped and counted.

Error lines go through ``report`` and carry reason codes, status codes and the endpoint's
scheme and host only: never an exception's text (it quotes the URL), never a header, never a
URL's credentials, path or query.
"""

from __future__ import annotations

import collections
import email.utils
import time
from typing import TYPE_CHECKING, Callable, NamedTuple
from urllib.parse import urlsplit

from ..numbers import parse_whole
from ..ratelimit import WARN_EVERY_S
from ..sample import Sample
from . import otlp, pushgateway
from .settings import DEFAULT_BUFFER

if TYPE_CHECKING:
    from ..config import Dyno
    from ..records import Report

MAX_TIMEOUT = 5.0
# A Retry-After further away than this is taken as this: an endpoint that asks for a day's
# silence would otherwise turn pushing off for the dyno's whole life.
MAX_RETRY_AFTER = 3600.0
# Not worth starting a request with less time than this left in the tick's budget.
MIN_REQUEST_TIME = 0.01


class PushFailure(Exception):
    """A request that got no usable HTTP answer; ``reason`` is a short code safe to print."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reply(NamedTuple):
    status: int
    retry_after: str | None
    body: bytes
    content_type: str | None = None


# transport(method, url, body, content_type, deadline) -> Reply, raising PushFailure.
# ``deadline`` is a time.monotonic() value the request must not run past.
Transport = Callable[[str, str, bytes, str, float], Reply]


class Pending(NamedTuple):
    url: str
    body: bytes


def safe_endpoint(url: str) -> str:
    """``scheme://host[:port]`` of a URL: no credentials, path or query, which may hold keys."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "invalid"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def retry_after_seconds(value: str | None, now_wall: float) -> float | None:
    """A Retry-After header (delay seconds or an HTTP date) as seconds from now, capped."""
    if not value:
        return None
    delay = parse_whole(value, 0, 10**12)
    if delay is not None:
        seconds = float(delay)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when is None or when.tzinfo is None:
                return None
            seconds = when.timestamp() - now_wall
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class OtlpProtocol:
    name = "otlp"
    method = "POST"

    def __init__(
        self,
        url: str,
        dyno: Dyno,
        host: str,
        start_time: float,
        *,
        encoding: str = otlp.PROTOBUF,
        service_name: str = "",
        resource: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._url = url
        self._dyno = dyno
        self._host = host
        self._service_name = service_name
        self._configured = resource
        self._encoder = otlp.Encoder(encoding, start_time)
        self.content_type = self._encoder.content_type
        self._resource_key: tuple[str, str] | None = None
        self._resource: object = None

    def request(self, sample: Sample, source: str, dyno: str, dropped: int) -> Pending:
        if self._resource_key != (source, dyno):
            self._resource_key = (source, dyno)
            attributes = otlp.resource_attributes(
                self._dyno,
                source,
                dyno,
                self._host,
                service_name=self._service_name,
                configured=self._configured,
            )
            self._resource = self._encoder.resource(attributes)
        return Pending(self._url, self._encoder.encode(sample, self._resource, dropped))

    def problem(
        self, body: bytes, content_type: str | None = None
    ) -> tuple[str, dict[str, object]] | None:
        rejected = otlp.rejected_points(body, content_type, self._encoder.encoding)
        if rejected is None:
            return "bad_response", {}
        if rejected:
            return "partially_rejected", {"rejected_points": rejected}
        return None


class PushgatewayProtocol:
    name = "pushgateway"
    method = pushgateway.METHOD
    content_type = pushgateway.CONTENT_TYPE

    def __init__(self, url: str, dyno: Dyno) -> None:
        self._base_url = url
        self._app = dyno.app_name
        self._dyno_id = dyno.id
        self._group: tuple[str, str] | None = None

    def request(self, sample: Sample, source: str, dyno: str, dropped: int) -> Pending:
        if self._group is None or self._group[0] != source:
            self._group = (source, pushgateway.group_url(self._base_url, source, self._app))
        # The dyno label is the dyno's id (its host name without dyno metadata), whatever
        # the log line's dyno= says in drop-in mode.
        return Pending(self._group[1], pushgateway.encode(sample, self._dyno_id or dyno, dropped))

    @staticmethod
    def problem(
        body: bytes, content_type: str | None = None
    ) -> tuple[str, dict[str, object]] | None:
        # The Pushgateway answers a good push with an empty 200/202; its body carries nothing
        # the agent could act on.
        return None


def _retryable(status: int) -> bool:
    # What OTLP/HTTP calls retryable, plus every 5xx and 408: the endpoint may well take the
    # same body later. Any other 4xx (and a redirect, which is never followed so headers
    # cannot travel to another host) rejects the body itself; re-sending it cannot help.
    return status in (408, 429) or status >= 500


class Sink:
    """Pushes each sample once per tick; see the module docstring for the guarantees."""

    def __init__(
        self,
        protocol,
        transport: Transport,
        *,
        interval: float,
        report: Report,
        endpoint: str,
        buffer_size: int = DEFAULT_BUFFER,
        max_timeout: float | None = None,
        compress: Callable[[bytes], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.protocol = protocol
        # The agent's own budget, and a shorter one if the configuration asks for it
        # (OTEL_EXPORTER_OTLP_TIMEOUT); never a longer one.
        self.timeout = min(MAX_TIMEOUT, interval / 2)
        if max_timeout is not None:
            self.timeout = min(self.timeout, max_timeout)
        self._compress = compress
        self.buffer_size = buffer_size
        self.dropped = 0
        self._transport = transport
        self._report = report
        self._endpoint = endpoint
        self._clock = clock
        self._wall_clock = wall_clock
        self._pending: collections.deque[Pending] = collections.deque()
        self._not_before = float("-inf")

    def send(self, sample: Sample, source: str, dyno: str) -> None:
        """Push this sample (after any waiting ones) within the time budget; never raises."""
        try:
            self._send(sample, source, dyno)
        except Exception as error:  # noqa: BLE001 - a sink bug must cost a push, not the agent
            self._error("internal", {"error": type(error).__name__})

    def _send(self, sample: Sample, source: str, dyno: str) -> None:
        started = self._clock()
        deadline = started + self.timeout
        pending = self.protocol.request(sample, source, dyno, self.dropped)
        if self._compress is not None:
            pending = Pending(pending.url, self._compress(pending.body))
        self._pending.append(pending)
        if started >= self._not_before:
            self._drain(deadline)
        while len(self._pending) > self.buffer_size:
            self._pending.popleft()
            self.dropped += 1

    def _drain(self, deadline: float) -> None:
        while self._pending:
            now = self._clock()
            if deadline - now < MIN_REQUEST_TIME:
                return
            pending = self._pending[0]
            try:
                reply = self._transport(
                    self.protocol.method,
                    pending.url,
                    pending.body,
                    self.protocol.content_type,
                    deadline,
                )
            except PushFailure as failure:
                self._error(failure.reason, {})
                return
            if 200 <= reply.status < 300:
                self._pending.popleft()
                problem = self.protocol.problem(reply.body, reply.content_type)
                if problem is not None:
                    reason, fields = problem
                    self._error(reason, {"status": reply.status, **fields})
                continue
            if reply.status in {429, 503}:
                wait = retry_after_seconds(reply.retry_after, self._wall_clock())
                if wait is not None:
                    self._not_before = self._clock() + wait
                    self._error("http_status", {"status": reply.status, "retry_after": round(wait)})
                    return
            if _retryable(reply.status):
                self._error("http_status", {"status": reply.status})
                return
            # The endpoint refuses this body for good; keep going with the next one.
            self._pending.popleft()
            self.dropped += 1
            self._error("http_status", {"status": reply.status, "rejected": "true"})

    def _error(self, reason: str, fields: dict[str, object]) -> None:
        """One at=error line per kind of failure per WARN_EVERY_S seconds, through the
        agent's one rate limiter (which counts the repeats it holds back)."""
        line: dict[str, object] = {
            "at": "error",
            "event": "push_failed",
            "protocol": self.protocol.name,
            "endpoint": self._endpoint,
            "reason": reason,
        }
        line.update(fields)
        # What will wait after this tick: the buffer is trimmed to its size once the tick's
        # sends are over.
        line["buffered"] = min(len(self._pending), self.buffer_size)
        line["dropped"] = self.dropped
        try:
            self._report(
                line, key=("push_failed", reason, fields.get("status")), every=WARN_EVERY_S
            )
        except Exception:  # noqa: BLE001, S110 - a broken log stream must not stop the push
            pass
