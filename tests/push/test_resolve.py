"""The push's own stub resolver, against real name servers on 127.0.0.x:53 and hostile bytes."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from name_servers import NameServer

from dynostat.push.resolve import (
    TYPE_A,
    MalformedAnswer,
    Query,
    ResolvConf,
    Resolver,
    candidates,
    parse_answer,
    parse_hosts,
    parse_resolv_conf,
)
from dynostat.push.sink import PushFailure

needs_port_53 = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to run name servers on port 53"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def servers(tmp_path):
    """Up to three name servers, and a resolver whose resolv.conf lists them."""
    running: list[NameServer] = []

    def start(*tables, search: str = "", ndots: int = 1, clock=time.monotonic) -> Resolver:
        for index, table in enumerate(tables):
            running.append(NameServer(f"127.0.0.{11 + index}", table))
        conf = "".join(f"nameserver {server.address}\n" for server in running)
        conf += f"search {search}\n" if search else ""
        conf += f"options ndots:{ndots}\n"
        (tmp_path / "resolv.conf").write_text(conf)
        (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
        return Resolver(str(tmp_path / "hosts"), str(tmp_path / "resolv.conf"), clock=clock)

    start.running = running
    try:
        yield start
    finally:
        for server in running:
            server.close()


def soon(seconds: float = 1.0) -> float:
    return time.monotonic() + seconds


@needs_port_53
def test_a_cname_chain_is_followed_to_its_address(servers):
    resolver = servers(
        {
            ("collector.test", "CNAME"): ["edge.cdn.test."],
            ("edge.cdn.test", "CNAME"): ["pop-7.cdn.test."],
            ("pop-7.cdn.test", "A"): ["127.0.0.7", "127.0.0.8"],
        }
    )
    assert sorted(resolver.addresses("collector.test", soon())) == ["127.0.0.7", "127.0.0.8"]


@needs_port_53
def test_a_truncated_answer_is_asked_again_over_tcp(servers):
    resolver = servers({("big.test", "A"): ["127.0.0.9"]})
    servers.running[0].truncate_udp = True
    assert resolver.addresses("big.test", soon()) == ["127.0.0.9"]
    assert servers.running[0].questions == [("udp", "big.test", "A"), ("tcp", "big.test", "A")]


@needs_port_53
def test_a_forged_answer_with_another_id_is_ignored(servers):
    resolver = servers({("collector.test", "A"): ["127.0.0.3"]})
    servers.running[0].forge_first = True
    assert resolver.addresses("collector.test", soon()) == ["127.0.0.3"]


@needs_port_53
def test_garbage_from_one_server_and_silence_from_another_fall_through_to_the_third(servers):
    resolver = servers({}, {}, {("collector.test", "A"): ["127.0.0.4"]})
    first, second, _ = servers.running
    first.garbage = b"\xc0\x0c" * 40  # a header's worth of compression pointers pointing home
    second.silent = True
    started = time.monotonic()
    assert resolver.addresses("collector.test", soon(1.5)) == ["127.0.0.4"]
    # A reply that does not parse may be a forgery, so the first server keeps its share (a
    # third of 1.5 s) to send the real one; the silent one gets half of what is left. The
    # third still answers in time.
    assert time.monotonic() - started < 1.2


@needs_port_53
def test_search_domains_are_tried_in_glibcs_order(servers):
    resolver = servers({("api.internal.test", "A"): ["127.0.0.6"]}, search="internal.test")
    assert resolver.addresses("api", soon()) == ["127.0.0.6"]
    assert servers.running[0].questions == [("udp", "api.internal.test", "A")]


@needs_port_53
def test_ipv6_is_asked_for_only_when_the_name_has_no_ipv4_address(servers):
    resolver = servers({("v6only.test", "AAAA"): ["::1"], ("both.test", "A"): ["127.0.0.2"]})
    assert resolver.addresses("v6only.test", soon()) == ["::1"]
    assert resolver.addresses("both.test", soon()) == ["127.0.0.2"]
    asked = [question[2] for question in servers.running[0].questions]
    assert asked == ["A", "AAAA", "A"]


@needs_port_53
def test_an_answer_is_reused_for_its_ttl_and_asked_again_after(servers):
    clock = Clock()
    resolver = servers({("collector.test", "A"): ["127.0.0.5"]}, clock=clock)
    for _ in range(3):
        resolver.addresses("collector.test", time.monotonic() + 1)
        clock.now += 60
    assert len(servers.running[0].questions) == 1
    clock.now += 300  # past the 300 s TTL
    resolver.addresses("collector.test", time.monotonic() + 1)
    assert len(servers.running[0].questions) == 2


@needs_port_53
def test_a_name_nobody_knows_is_a_dns_failure(servers):
    resolver = servers({})
    with pytest.raises(PushFailure) as failure:
        resolver.addresses("nowhere.test", soon())
    assert failure.value.reason == "dns"


def test_etc_hosts_answers_without_asking_any_server(tmp_path):
    (tmp_path / "hosts").write_bytes(
        b"# comment\n127.0.0.1 localhost\n\n10.1.2.3  Collector.Internal  collector # alias\n"
        b"\xff\xfe garbage line\n"
    )
    (tmp_path / "resolv.conf").write_text("nameserver 192.0.2.1\n")  # never asked
    resolver = Resolver(str(tmp_path / "hosts"), str(tmp_path / "resolv.conf"))
    assert resolver.addresses("collector.internal", soon(0.01)) == ["10.1.2.3"]
    assert resolver.addresses("COLLECTOR", soon(0.01)) == ["10.1.2.3"]
    assert resolver.addresses("::1", 0.0) == ["::1"]


def test_resolv_conf_is_read_as_glibc_reads_it():
    conf = parse_resolv_conf(
        b"domain old.test\nsearch a.test b.test.\n; comment\nnameserver 10.0.0.1\n"
        b"nameserver fe80::1%eth0\nnameserver not-an-address\nnameserver 10.0.0.3\n"
        b"nameserver 10.0.0.4\noptions rotate ndots:2 timeout:1\n\xff\n"
    )
    assert conf.servers == ["10.0.0.1", "fe80::1", "10.0.0.3"]
    assert conf.search == ["a.test", "b.test"]
    assert conf.ndots == 2
    assert parse_resolv_conf(b"").servers == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("name", "ndots", "expected"),
    [
        ("collector.example.com", 1, ["collector.example.com", "collector.example.com.a.test"]),
        ("api", 1, ["api.a.test", "api"]),
        ("api.svc", 2, ["api.svc.a.test", "api.svc"]),
        ("absolute.test.", 1, ["absolute.test"]),
    ],
)
def test_names_are_tried_as_given_or_with_the_search_list_by_ndots(name, ndots, expected):
    assert candidates(name, ResolvConf(["10.0.0.1"], ["a.test"], ndots)) == expected


def test_hosts_lines_with_bad_addresses_are_skipped():
    assert parse_hosts(b"not-an-ip host.test\n10.0.0.1 host.test\n", "host.test") == ["10.0.0.1"]


def test_a_name_dns_cannot_carry_fails_as_dns_without_asking(tmp_path):
    (tmp_path / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    resolver = Resolver(str(tmp_path / "missing-hosts"), str(tmp_path / "resolv.conf"))
    for name in ("a" * 64 + ".test", "two..dots.test"):
        with pytest.raises(PushFailure) as failure:
            resolver.addresses(name, soon(0.01))
        assert failure.value.reason == "dns"


def reply_to(query: Query, answer: bytes, count: int = 1, flags: int = 0x8180) -> bytes:
    header = struct.pack("!HHHHHH", query.id, flags, 1, count, 0, 0)
    return header + query.wire_name + struct.pack("!HH", query.record_type, 1) + answer


def test_a_reply_for_another_name_or_type_is_not_taken():
    query = Query("collector.test", TYPE_A, query_id=7)
    other = Query("evil.test", TYPE_A, query_id=7)
    record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("10.6.6.6")
    assert parse_answer(reply_to(query, record), query).addresses == ["10.6.6.6"]
    with pytest.raises(MalformedAnswer):
        parse_answer(reply_to(other, record), query)
    # An A record for a name the chain never reached is not an answer.
    stray = b"\x04evil\x04test\x00" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes(4)
    assert parse_answer(reply_to(query, stray), query).addresses == []


@given(st.binary(max_size=600))
def test_any_bytes_are_an_answer_or_malformed_never_another_exception(data):
    query = Query("collector.test", TYPE_A, query_id=int.from_bytes(data[:2] or b"\0\0", "big"))
    try:
        answer = parse_answer(data, query)
    except MalformedAnswer:
        return
    assert all(socket.inet_aton(address) for address in answer.addresses)


@given(st.binary(max_size=300))
def test_any_bytes_after_a_valid_header_and_question_parse_or_fail_cleanly(tail):
    query = Query("collector.test", TYPE_A, query_id=99)
    try:
        parse_answer(reply_to(query, tail, count=5), query)
    except MalformedAnswer:
        pass
