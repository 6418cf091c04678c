"""HTTP for the push sink: the standard library's http.client, with one hard deadline.

Imported only when a push URL is set. The push needs one request per tick to one endpoint,
its answer's status and at most a few kilobytes of its body; http.client does exactly that
and nothing more. The conveniences of larger HTTP libraries are either unwanted here (proxies
and ``.netrc`` from the environment, redirects that would carry the API key to another host)
or a risk (decoding compressed answers: an endpoint answering with a compression bomb made
the agent allocate gigabytes), and they cost memory: urllib3 alone pulls in about 6 MB more
than http.client and ssl (bench/bench_push.py has the figures).

Deadline: socket timeouts bound each socket operation, not a request: an endpoint that drips
one byte per second never trips a one-second read timeout, and name resolution is not a
socket operation at all. So a request runs under an interval timer (``setitimer``): when the
deadline passes, SIGALRM interrupts whatever the request is blocked in (a DNS query, connect,
the TLS handshake, send, receive) and the request fails with ``timeout`` (``dns`` while the
name was being resolved). The connection is then closed, never reused half-read.

Answers: never decompressed (http.client sends ``Accept-Encoding: identity`` and decodes
nothing), and never read past ``MAX_RESPONSE_BYTES`` in all, status line and headers
included: a longer answer fails the request as ``bad_response``.
"""

from __future__ import annotations

import base64
import http.client
import io
import os
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from .. import __version__
from .resolve import Resolver
from .sink import PushFailure, Reply

try:
    import _signal as signal
except ImportError:  # an interpreter without CPython's private module
    import signal  # type: ignore[no-redef]

# Status line, headers and body together: far more than any OTLP or Pushgateway answer (an
# empty body, a partial-success message, a line of error text), far less than the agent's
# memory budget.
MAX_RESPONSE_BYTES = 64 * 1024
# The shortest timer worth arming; a deadline closer than this has passed already.
MIN_TIMER_S = 0.001


class DeadlinePassed(BaseException):
    """Raised by the SIGALRM handler inside whatever call was blocked at the deadline.

    A BaseException, so that no ``except Exception`` in http.client, ssl or the resolver can
    take it for one of their own errors and carry on.
    """


class _Alarm:
    """A one-shot SIGALRM at the request's deadline, raising DeadlinePassed once."""

    def __init__(self) -> None:
        self._armed = False
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, signum: int, frame: object) -> None:
        if self._armed:
            self._armed = False
            raise DeadlinePassed

    def start(self, deadline: float) -> None:
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), MIN_TIMER_S))

    def stop(self) -> None:
        self._armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


class AnswerTooLong(http.client.HTTPException):
    """The endpoint sent more than MAX_RESPONSE_BYTES."""


class _BoundedReader(io.RawIOBase):
    """The socket's bytes, as many as MAX_RESPONSE_BYTES in all; then AnswerTooLong."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._left = MAX_RESPONSE_BYTES

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            raise AnswerTooLong
        view = memoryview(buffer)[: self._left]
        count = self._sock.recv_into(view)
        self._left -= count
        return count


class _BoundedResponse(http.client.HTTPResponse):
    """An HTTPResponse that reads its answer through a _BoundedReader."""

    def __init__(self, sock: socket.socket, *args, **kwargs) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_BoundedReader(sock), 8192)


class _Connection(http.client.HTTPConnection):
    """An HTTP connection to an address found beforehand, for the URL's host name."""

    response_class = _BoundedResponse

    def __init__(self, address: str, port: int, host: str, context: ssl.SSLContext | None):
        super().__init__(address, port)
        self.server_name = host
        self.context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                # SNI and the certificate check are for the URL's name, not the address.
                sock = self.context.wrap_socket(sock, server_hostname=self.server_name)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _chain(error: BaseException) -> list:
    """The error and every error behind it (causes, contexts, wrapped reasons), once each."""
    found: list = []
    todo = [error]
    while todo:
        current = todo.pop()
        if any(current is known for known in found):
            continue
        found.append(current)
        behind = [current.__cause__, current.__context__, *current.args]
        todo.extend(item for item in behind if isinstance(item, BaseException))
    return found


# Most telling first.
_REASONS = (
    ("refused", (ConnectionRefusedError,)),
    ("tls", (ssl.SSLError, ssl.CertificateError)),
    ("timeout", (socket.timeout, TimeoutError)),
    ("reset", (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)),
    ("bad_response", (http.client.HTTPException,)),
)


def _reason(error: BaseException) -> str:
    """A short, printable code for a failed request; never the exception's text."""
    chain = _chain(error)
    for reason, kinds in _REASONS:
        if any(isinstance(item, kinds) for item in chain):
            return reason
    return "connection"


def _default_ca_file() -> str | None:
    """certifi's CA bundle (what browsers trust), found without importing certifi: its
    import costs the agent about 4.6 MB for one file name."""
    for folder in sys.path:
        candidate = os.path.join(folder or ".", "certifi", "cacert.pem")
        if os.path.isfile(candidate):
            return candidate
    return None  # the system's certificate store is used instead


class Endpoint:
    """What the transport needs of a URL, split once: where to connect and what to send."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host_header += f":{parts.port}"
        self.host_header = host_header
        self.authorization: str | None = None
        if parts.username is not None:
            # user:password@ in the URL is HTTP basic auth, as curl takes it.
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            self.authorization = f"Basic {token}"


class HttpTransport:
    """Sends one request and reads its short answer, by a deadline; see the module docstring."""

    def __init__(
        self,
        headers: Mapping[str, str],
        resolver: Resolver | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._headers = {"User-Agent": f"dynostat/{__version__}", **headers}
        self._resolver = resolver if resolver is not None else Resolver()
        self._ca_file = ca_file if ca_file is not None else _default_ca_file()
        self._context: ssl.SSLContext | None = None
        self._alarm = _Alarm()
        self._endpoint: Endpoint | None = None
        # One kept-alive connection, to the address the endpoint resolved to last.
        self._connection: _Connection | None = None
        self._connection_key: tuple[str, str, int, str] | None = None
        self._resolving = False  # whether the request in progress is still resolving its host

    def __call__(
        self, method: str, url: str, body: bytes, content_type: str, deadline: float
    ) -> Reply:
        if deadline - time.monotonic() <= MIN_TIMER_S:
            raise PushFailure("timeout")
        finished = False
        self._resolving = False
        try:
            try:
                self._alarm.start(deadline)
                reply = self._request(method, url, body, content_type, deadline)
                finished = True
                return reply
            finally:
                self._alarm.stop()
        except DeadlinePassed:
            # Say which step ran out of time: a name server that never answers is a different
            # fix from an endpoint that never answers.
            raise PushFailure("dns" if self._resolving else "timeout") from None
        except PushFailure:
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes a reason code
            raise PushFailure(_reason(error)) from None
        finally:
            if not finished:
                # A request cut short may leave half an answer on its connection: never reuse
                # it. This also runs when a stop signal ends the request.
                self._close()

    def _request(
        self, method: str, url: str, body: bytes, content_type: str, deadline: float
    ) -> Reply:
        endpoint = self._endpoint
        if endpoint is None or endpoint.url != url:
            endpoint = self._endpoint = Endpoint(url)
        self._resolving = True
        address = self._resolver.addresses(endpoint.host, deadline)[0]
        self._resolving = False
        connection = self._connection_for(endpoint, address)
        connection.timeout = max(deadline - time.monotonic(), MIN_TIMER_S)
        if connection.sock is not None:
            connection.sock.settimeout(connection.timeout)
        headers = {**self._headers, "Host": endpoint.host_header, "Content-Type": content_type}
        if endpoint.authorization is not None and "Authorization" not in self._headers:
            headers["Authorization"] = endpoint.authorization
        connection.request(method, endpoint.target, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(MAX_RESPONSE_BYTES)
        if not response.isclosed() or response.will_close:
            # Unread bytes, or the endpoint closes the connection after this answer.
            self._close()
        return Reply(
            response.status,
            response.getheader("Retry-After"),
            answer,
            response.getheader("Content-Type"),
        )

    def _connection_for(self, endpoint: Endpoint, address: str) -> _Connection:
        key = (endpoint.scheme, endpoint.host, endpoint.port, address)
        if self._connection is not None and self._connection_key == key:
            return self._connection
        self._close()
        context = None
        if endpoint.scheme == "https":
            if self._context is None:
                self._context = ssl.create_default_context(cafile=self._ca_file)
            context = self._context
        self._connection = _Connection(address, endpoint.port, endpoint.host, context)
        self._connection_key = key
        return self._connection

    def _close(self) -> None:
        connection, self._connection, self._connection_key = self._connection, None, None
        if connection is not None:
            connection.close()
