"""HTTP for the push sink, on requests, with a hard deadline per request.

Imported only when a push URL is set: requests costs the agent about 18 MB of RSS.

requests' timeouts bound each socket operation, not the request: an endpoint that drips one
byte per second never trips a 1 s read timeout. The sockets here re-arm their timeout before
every send and receive to whatever is left until the request's deadline, and fail once it has
passed, so no answer however slow can hold the agent's loop. Connection setup (the TCP connect
and the TLS handshake) is one operation each, bounded by the same remaining time. Name
resolution is the one step no socket timeout reaches; make_sink bounds it through the
resolver's own options.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Mapping

import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .. import __version__
from .sink import PushFailure, Reply

# More than any OTLP or Pushgateway answer worth reading; the rest is not read at all.
MAX_RESPONSE_BYTES = 64 * 1024


class _Deadline:
    """The monotonic time the current request must end by; None between requests."""

    at: float | None = None


_deadline = _Deadline()


def _arm(sock: socket.socket) -> None:
    if _deadline.at is None:
        return
    remaining = _deadline.at - time.monotonic()
    if remaining <= 0:
        raise socket.timeout("push deadline passed")
    sock.settimeout(remaining)


class _Armed:
    """Arms the request's deadline before every read or write of the socket it is mixed into.

    ``sendall`` is armed as a whole: since Python 3.5 a socket timeout bounds a whole
    sendall, not each chunk of it (and a TLS sendall arms again for each record it sends).
    """

    __slots__ = ()

    def recv(self, *args, **kwargs):
        _arm(self)
        return super().recv(*args, **kwargs)

    def recv_into(self, *args, **kwargs):
        _arm(self)
        return super().recv_into(*args, **kwargs)

    def send(self, *args, **kwargs):
        _arm(self)
        return super().send(*args, **kwargs)

    def sendall(self, *args, **kwargs):
        _arm(self)
        return super().sendall(*args, **kwargs)


class _DeadlineSocket(_Armed, socket.socket):
    """A plain TCP socket whose every operation ends by the request's deadline."""

    __slots__ = ()


class _DeadlineTLSSocket(_Armed, ssl.SSLSocket):
    """The TLS socket over it, armed the same way before every record it reads or writes."""


def _with_deadline(sock):
    # Swapping the class of a live socket keeps urllib3's own connection code (proxies, socket
    # options, certificate checks) untouched; the subclasses add no state, so the object
    # layout is the same and Python allows it. Anything else (a TLS-in-TLS proxy tunnel) keeps
    # urllib3's per-operation timeouts.
    if type(sock) is socket.socket:
        sock.__class__ = _DeadlineSocket
    elif type(sock) is ssl.SSLSocket:
        sock.__class__ = _DeadlineTLSSocket
    return sock


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self):
        return _with_deadline(super()._new_conn())


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self):
        return _with_deadline(super()._new_conn())

    def connect(self):
        super().connect()
        self.sock = _with_deadline(self.sock)


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _chain(error: BaseException) -> list:
    """The error and every error behind it (causes, contexts, wrapped reasons), once each."""
    found: list = []
    todo = [error]
    while todo:
        current = todo.pop()
        if any(current is known for known in found):
            continue
        found.append(current)
        behind = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        behind.extend(current.args)
        todo.extend(item for item in behind if isinstance(item, BaseException))
    return found


# Most telling first: a refused connection is also wrapped in urllib3's NewConnectionError,
# which urllib3 makes a subclass of its connect-timeout error for old callers' sake.
_REASONS = (
    # urllib3 1.26 has no NameResolutionError; its gaierror is found in the chain instead.
    ("dns", (socket.gaierror, getattr(urllib3.exceptions, "NameResolutionError", socket.gaierror))),
    ("refused", (ConnectionRefusedError,)),
    ("tls", (ssl.SSLError, ssl.CertificateError)),
    ("timeout", (socket.timeout, TimeoutError, urllib3.exceptions.ReadTimeoutError)),
    ("reset", (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)),
    ("bad_response", (http.client.HTTPException, urllib3.exceptions.ProtocolError)),
)


def _reason(error: BaseException) -> str:
    """A short, printable code for a failed request; never the exception's text (it has URLs)."""
    chain = _chain(error)
    for reason, kinds in _REASONS:
        if any(isinstance(item, kinds) for item in chain):
            return reason
    if any(isinstance(item, requests.exceptions.Timeout) for item in chain):
        return "timeout"
    return "connection"


class RequestsTransport:
    """Sends one request and reads at most MAX_RESPONSE_BYTES of the answer, by a deadline."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._session = requests.Session()
        # No proxy variables, no ~/.netrc: what goes out is exactly the configured URL and
        # headers, and no file is read on every tick.
        self._session.trust_env = False
        adapter = _DeadlineAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = f"dynostat/{__version__}"
        self._session.headers.update(headers)

    def __call__(
        self, method: str, url: str, body: bytes, content_type: str, deadline: float
    ) -> Reply:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PushFailure("timeout")
        _deadline.at = deadline
        response = None
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers={"Content-Type": content_type},
                timeout=(remaining, remaining),
                allow_redirects=False,
                stream=True,
            )
            answer = response.raw.read(MAX_RESPONSE_BYTES, decode_content=True) or b""
            return Reply(response.status_code, response.headers.get("Retry-After"), answer)
        except Exception as error:  # noqa: BLE001 - every failure becomes a reason code
            # A connection that failed halfway may hold half an answer: never reuse it.
            if response is not None:
                response.close()
                response = None
            raise PushFailure(_reason(error)) from None
        finally:
            _deadline.at = None
            if response is not None:
                response.close()
