"""Name servers on 127.0.0.x:53 for the tests, built on dnspython's message classes.

``NameServer`` answers UDP (and TCP) queries from a table of records, counts every question,
and can be scripted to misbehave: answer with the truncation bit, send a forged answer
before the real one, answer garbage, or stay silent. Every server stops by itself after
SERVER_LIFETIME seconds. Binding port 53 needs root.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

SERVER_LIFETIME = 60.0


class NameServer:
    """A DNS server on ``address``:53; see the module docstring."""

    def __init__(self, address: str, records: dict[tuple[str, str], list[str]], ttl=300):
        # (name, type) -> values, e.g. ("collector.test", "A") -> ["127.0.0.1"],
        # ("alias.test", "CNAME") -> ["collector.test."]
        self.records = records
        self.ttl = ttl
        self.address = address
        self.questions: list[tuple[str, str, str]] = []  # (transport, name, type)
        self.truncate_udp = False
        self.forge_first = False
        self.garbage: bytes | None = None
        self.silent = False
        self.nxdomain_for: set[str] = set()
        self._stop = threading.Event()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((address, 53))
        self._udp.settimeout(0.05)
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind((address, 53))
        self._tcp.listen(4)
        self._tcp.settimeout(0.05)
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True)
        reply = dns.message.make_response(query)
        if name in self.nxdomain_for:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply
        wanted = dns.rdatatype.to_text(question.rdtype)
        current = name
        for _ in range(8):
            aliases = self.records.get((current, "CNAME"))
            if not aliases:
                break
            reply.answer.append(
                dns.rrset.from_text(current + ".", self.ttl, "IN", "CNAME", aliases[0])
            )
            current = aliases[0].rstrip(".")
        values = self.records.get((current, wanted), [])
        if values:
            reply.answer.append(dns.rrset.from_text(current + ".", self.ttl, "IN", wanted, *values))
        elif not reply.answer:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply

    def _serve_udp(self) -> None:
        end = time.monotonic() + SERVER_LIFETIME
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                data, peer = self._udp.recvfrom(4096)
            except OSError:
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            self.questions.append(
                ("udp", question.name.to_text(True), dns.rdatatype.to_text(question.rdtype))
            )
            if self.silent:
                continue
            if self.garbage is not None:
                self._udp.sendto(self.garbage, peer)
                continue
            reply = self.answer(query)
            if self.forge_first:
                forged = dns.message.make_response(query)
                forged.id = (query.id + 1) % 65536
                forged.answer.append(
                    dns.rrset.from_text(question.name, 300, "IN", "A", "203.0.113.66")
                )
                self._udp.sendto(forged.to_wire(), peer)
            if self.truncate_udp:
                reply.answer.clear()
                reply.flags |= dns.flags.TC
            self._udp.sendto(reply.to_wire(), peer)

    def _serve_tcp(self) -> None:
        end = time.monotonic() + SERVER_LIFETIME
        while not self._stop.is_set() and time.monotonic() < end:
            try:
                connection, _ = self._tcp.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    length = struct.unpack("!H", connection.recv(2))[0]
                    query = dns.message.from_wire(connection.recv(length))
                except (OSError, struct.error, dns.exception.DNSException):
                    continue
                question = query.question[0]
                self.questions.append(
                    ("tcp", question.name.to_text(True), dns.rdatatype.to_text(question.rdtype))
                )
                wire = self.answer(query).to_wire()
                connection.sendall(struct.pack("!H", len(wire)) + wire)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._udp.close()
        self._tcp.close()
