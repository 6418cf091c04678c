"""Name resolution for the push, inside the push's own time budget.

The system resolver (``getaddrinfo``) cannot be given a deadline: glibc waits its own timeout
per name server, per search domain and per attempt, retries through signals, and with three
name servers that never answer holds the agent's only thread for seconds on every tick. So
the push resolves names itself, as glibc would for a dyno, but by the push's deadline:

- an address is used as is; ``/etc/hosts`` is read first;
- then A records (AAAA when a name has no A record) from the name servers of
  ``/etc/resolv.conf``, in order, honouring its ``search``/``domain`` list and ``ndots``, over
  UDP, and over TCP when an answer is truncated;
- answers are checked the way a stub resolver must (the reply comes from the server asked,
  carries the random query id and the question asked), CNAME chains are followed within the
  answer, and addresses are cached for their TTL (at least MIN_TTL_S, at most MAX_TTL_S).

A DNS library would do the same, but the well-kept ones are toolkits (zones, DNSSEC, async,
DNS over HTTPS): dnspython 2.9 costs 7.6 MB of memory to import and set up a resolver, most
of what the whole agent costs without push. The standard library has what a stub resolver needs.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time

from ..numbers import parse_whole
from .sink import PushFailure

HOSTS_PATH = "/etc/hosts"
RESOLV_CONF_PATH = "/etc/resolv.conf"
DNS_PORT = 53
# glibc reads at most three name servers, and so do we.
MAX_NAME_SERVERS = 3
MAX_SEARCH_DOMAINS = 6
DEFAULT_NDOTS = 1
# Neither file is ever this big on a dyno; a larger one is read only this far.
MAX_CONFIG_BYTES = 64 * 1024
# /etc/hosts answers carry no TTL; the file is read again after this long.
HOSTS_TTL_S = 60.0
# An answer with a TTL of 0 would cost a query per tick; one of days would outlive a move.
MIN_TTL_S = 5.0
MAX_TTL_S = 300.0
# The largest UDP answer read (EDNS is not used, so servers keep to 512; a few send more).
MAX_UDP_BYTES = 4096
# How many CNAME links an answer may chain before it is taken for a loop.
MAX_CNAMES = 8

TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28
CLASS_IN = 1
FLAG_RESPONSE, FLAG_TRUNCATED, FLAG_RECURSION_DESIRED = 0x8000, 0x0200, 0x0100
RCODE_OK, RCODE_NXDOMAIN = 0, 3


class MalformedAnswer(ValueError):
    """A DNS message that does not parse; the server is treated as one that failed."""


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_hosts(data: bytes, name: str) -> list[str]:
    """The addresses ``hosts(5)`` text gives ``name`` (case-insensitive), in file order."""
    wanted = name.lower().rstrip(".").encode("ascii", "replace")
    found = []
    for line in data.splitlines():
        fields = line.split(b"#", 1)[0].split()
        if len(fields) < 2 or wanted not in (field.lower() for field in fields[1:]):
            continue
        address = fields[0].decode("ascii", "replace")
        if is_address(address):
            found.append(address)
    return found


class ResolvConf:
    """What ``resolv.conf(5)`` says: name servers, search list and ndots."""

    def __init__(
        self,
        servers: list[str],
        search: list[str] | None = None,
        ndots: int = DEFAULT_NDOTS,
    ) -> None:
        self.servers = servers
        self.search = search or []
        self.ndots = ndots


def parse_resolv_conf(data: bytes) -> ResolvConf:
    servers: list[str] = []
    search: list[str] = []
    ndots = DEFAULT_NDOTS
    for line in data.splitlines():
        fields = line.split(b"#", 1)[0].split(b";", 1)[0].decode("ascii", "replace").split()
        if not fields:
            continue
        keyword, values = fields[0], fields[1:]
        if keyword == "nameserver" and values and is_address(values[0].split("%")[0]):
            if len(servers) < MAX_NAME_SERVERS:
                servers.append(values[0].split("%")[0])
        elif keyword in ("search", "domain"):
            # The last search or domain line wins, as in glibc.
            search = [value.strip(".") for value in values if value.strip(".")]
            search = search[:MAX_SEARCH_DOMAINS]
        elif keyword == "options":
            for option in values:
                name, _, value = option.partition(":")
                count = parse_whole(value, 0, 10**19) if name == "ndots" else None
                if count is not None:
                    ndots = min(count, 15)
    return ResolvConf(servers or ["127.0.0.1"], search, ndots)


def candidates(name: str, conf: ResolvConf) -> list[str]:
    """The names to ask for, in glibc's order: as given first when it has ndots dots."""
    if name.endswith("."):
        return [name.rstrip(".")]
    searched = [f"{name}.{domain}" for domain in conf.search]
    if name.count(".") >= conf.ndots:
        return [name, *searched]
    return [*searched, name]


def encode_name(name: str) -> bytes:
    """``name`` in DNS wire form (length-prefixed labels); MalformedAnswer when it is not one."""
    labels = name.encode("idna") if not name.isascii() else name.encode("ascii")
    encoded = b""
    for label in labels.split(b"."):
        if not label or len(label) > 63:
            raise MalformedAnswer(f"not a DNS name: {name!r}")
        encoded += bytes([len(label)]) + label
    if len(encoded) > 254:
        raise MalformedAnswer(f"name too long: {name!r}")
    return encoded + b"\0"


class Query:
    """One question (a name and a record type) with the random id its answer must carry."""

    def __init__(self, name: str, record_type: int, query_id: int | None = None) -> None:
        self.name = name
        self.record_type = record_type
        self.id = int.from_bytes(os.urandom(2), "big") if query_id is None else query_id
        self.wire_name = encode_name(name)
        # The name as _read_name gives it back: lowercase, dotted, ASCII.
        self.asked = _read_name(self.wire_name, 0)[0]

    def message(self) -> bytes:
        header = struct.pack("!HHHHHH", self.id, FLAG_RECURSION_DESIRED, 1, 0, 0, 0)
        return header + self.wire_name + struct.pack("!HH", self.record_type, CLASS_IN)


def _read_name(message: bytes, offset: int) -> tuple[bytes, int]:
    """A possibly compressed name at ``offset``: (lowercase dotted name, offset after it)."""
    labels = []
    end = None
    for _ in range(128):  # a name has at most 127 labels; more means pointers that loop
        if offset >= len(message):
            raise MalformedAnswer("name runs past the message")
        length = message[offset]
        if length == 0:
            return b".".join(labels).lower(), (offset + 1 if end is None else end)
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise MalformedAnswer("pointer runs past the message")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
        elif length & 0xC0:
            raise MalformedAnswer("unknown label type")
        else:
            labels.append(message[offset + 1 : offset + 1 + length])
            offset += 1 + length
    raise MalformedAnswer("compression pointers loop")


class Answer:
    """What a reply says about a Query: rcode, whether it was truncated, addresses and TTL."""

    def __init__(self, rcode: int, truncated: bool, addresses: list[str], ttl: float) -> None:
        self.rcode = rcode
        self.truncated = truncated
        self.addresses = addresses
        self.ttl = ttl


def _records(message: bytes, offset: int, count: int) -> list[tuple[bytes, int, int, int, int]]:
    """``count`` resource records from ``offset``: (owner, type, class, TTL, data offset)."""
    records = []
    for _ in range(count):
        owner, offset = _read_name(message, offset)
        if offset + 10 > len(message):
            raise MalformedAnswer("record runs past the message")
        kind, klass, ttl, length = struct.unpack("!HHIH", message[offset : offset + 10])
        records.append((owner, kind, klass, ttl, offset + 10))
        offset += 10 + length
        if offset > len(message):
            raise MalformedAnswer("record data runs past the message")
    return records


def parse_answer(message: bytes, query: Query) -> Answer:
    """The Answer a reply gives ``query``; MalformedAnswer for anything that is not a reply to
    exactly this query (another id, another question, bytes that do not parse)."""
    if len(message) < 12:
        raise MalformedAnswer("shorter than a DNS header")
    reply_id, flags, questions, answers, _, _ = struct.unpack("!HHHHHH", message[:12])
    if reply_id != query.id or not flags & FLAG_RESPONSE or questions != 1:
        raise MalformedAnswer("not the reply to this query")
    asked, offset = _read_name(message, 12)
    if message[offset : offset + 4] != struct.pack("!HH", query.record_type, CLASS_IN):
        raise MalformedAnswer("the reply is for another question")
    if asked != query.asked:
        raise MalformedAnswer("the reply is for another name")
    records = _records(message, offset + 4, answers)
    # Follow the CNAME chain from the name asked, within this answer only.
    current, ttls = query.asked, []
    for _ in range(MAX_CNAMES):
        link = next(
            (
                record
                for record in records
                if record[0] == current and record[1] == TYPE_CNAME and record[2] == CLASS_IN
            ),
            None,
        )
        if link is None:
            break
        current = _read_name(message, link[4])[0]
        ttls.append(link[3])
    family, size = (socket.AF_INET, 4) if query.record_type == TYPE_A else (socket.AF_INET6, 16)
    addresses = []
    for owner, kind, klass, ttl, start in records:
        data = message[start : start + size]
        if owner == current and kind == query.record_type and klass == CLASS_IN:
            if len(data) == size and struct.unpack("!H", message[start - 2 : start])[0] == size:
                addresses.append(socket.inet_ntop(family, data))
                ttls.append(ttl)
    return Answer(flags & 0x000F, bool(flags & FLAG_TRUNCATED), addresses, min(ttls, default=0))


class Resolver:
    """``addresses(host, deadline)``: where to connect, found by the deadline or PushFailure.

    Reads ``/etc/hosts`` and ``/etc/resolv.conf`` on every lookup (one every few minutes at
    most, thanks to the cache), so a dyno whose resolver configuration changes is followed.
    """

    def __init__(
        self,
        hosts_path: str = HOSTS_PATH,
        resolv_conf_path: str = RESOLV_CONF_PATH,
        clock=time.monotonic,
    ) -> None:
        self.hosts_path = hosts_path
        self.resolv_conf_path = resolv_conf_path
        self.clock = clock
        # host -> (addresses, monotonic time they expire); one endpoint, so one entry.
        self._cache: dict[str, tuple[list[str], float]] = {}

    def addresses(self, host: str, deadline: float) -> list[str]:
        # The cache first: it holds only names, and a push to a name finds it there.
        cached = self._cache.get(host)
        if cached is not None and self.clock() < cached[1]:
            return cached[0]
        if is_address(host):
            return [host]
        found, ttl = self._look_up(host, deadline)
        self._cache = {host: (found, self.clock() + min(max(ttl, MIN_TTL_S), MAX_TTL_S))}
        return found

    def _look_up(self, host: str, deadline: float) -> tuple[list[str], float]:
        from_hosts = parse_hosts(_read_config(self.hosts_path), host)
        if from_hosts:
            return from_hosts, HOSTS_TTL_S
        conf = parse_resolv_conf(_read_config(self.resolv_conf_path))
        # IPv4 first: dynos reach the internet over IPv4; IPv6 only for a name without it.
        for record_type in (TYPE_A, TYPE_AAAA):
            for name in candidates(host, conf):
                try:
                    query = Query(name, record_type)
                except (MalformedAnswer, UnicodeError):
                    raise PushFailure("dns") from None  # not a name DNS can carry
                answer = self._ask_servers(query, conf.servers, deadline)
                if answer is not None and answer.addresses:
                    return answer.addresses, answer.ttl
        raise PushFailure("dns")

    def _ask_servers(self, query: Query, servers: list[str], deadline: float) -> Answer | None:
        """Ask each server in turn; the first that answers for the name decides."""
        for index, server in enumerate(servers):
            # Each server gets an even share of the time left, so one that never answers
            # cannot use up the time of the servers after it.
            now = self.clock()
            share = now + (deadline - now) / (len(servers) - index)
            try:
                answer = self._ask(server, query, share)
            except (OSError, MalformedAnswer):
                continue  # this server failed or answered nonsense: ask the next one
            if answer.rcode in (RCODE_OK, RCODE_NXDOMAIN):
                return answer  # a definite answer, even one without an address
        return None

    def _ask(self, server: str, query: Query, deadline: float) -> Answer:
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            # A connected socket takes datagrams from this server only, on a port the kernel
            # picked at random: a forged answer must guess both it and the random query id.
            udp.connect((server, DNS_PORT))
            udp.send(query.message())
            while True:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise socket.timeout("the name server did not answer")
                readable, _, _ = select.select([udp], [], [], remaining)
                if not readable:
                    continue
                try:
                    answer = parse_answer(udp.recv(MAX_UDP_BYTES), query)
                except MalformedAnswer:
                    continue  # not the answer to this query: keep waiting for it
                break
        if answer.truncated:
            return self._ask_tcp(server, query, deadline)
        return answer

    def _ask_tcp(self, server: str, query: Query, deadline: float) -> Answer:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise socket.timeout("no time left to ask over TCP")
        with socket.create_connection((server, DNS_PORT), timeout=remaining) as tcp:
            message = query.message()
            tcp.sendall(struct.pack("!H", len(message)) + message)
            length = struct.unpack("!H", _receive(tcp, 2, deadline, self.clock))[0]
            return parse_answer(_receive(tcp, length, deadline, self.clock), query)


def _receive(sock: socket.socket, size: int, deadline: float, clock) -> bytes:
    data = b""
    while len(data) < size:
        sock.settimeout(max(deadline - clock(), 0.001))
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise MalformedAnswer("the name server closed the connection early")
        data += chunk
    return data


def _read_config(path: str) -> bytes:
    try:
        with open(path, "rb") as config:
            return config.read(MAX_CONFIG_BYTES)
    except OSError:
        return b""
