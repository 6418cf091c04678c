"""HTTPS endpoints: certificates are checked, and the deadline holds inside TLS too.

Collectors are usually reached over HTTPS, where the bytes are read by the TLS layer rather
than the plain socket; a drip there must be cut at the deadline just the same.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time

import pytest
from push_sample import DYNO, SOURCE, sink_from_env, take_sample, waiting
from push_servers import Receiver, Reply

from dynostat.config import Dyno
from dynostat.push.resolve import Resolver
from dynostat.push.sink import OtlpProtocol, Sink
from dynostat.push.transport import HttpTransport
from support.reports import Reports

INTERVAL = 2.0
BUDGET = 1.0
SLACK = 0.35


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a throwaway certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key, cert


@pytest.fixture
def tls_receiver(certificate):
    key, cert = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    running = Receiver(tls=context)
    try:
        yield running
    finally:
        running.stop()


def tls_sink(url: str, reports: list, trusted_cert=None):
    if trusted_cert is None:
        return sink_from_env({"DYNOSTAT_URL": url + "/v1/metrics"}, INTERVAL, reports)
    # The agent trusts certifi's CA bundle; the test's throwaway certificate stands in for a
    # collector's real one, as the only CA this sink's transport trusts.
    return Sink(
        OtlpProtocol(url + "/v1/metrics", Dyno(), "host", time.time()),
        HttpTransport({}, ca_file=str(trusted_cert)),
        interval=INTERVAL,
        report=reports,
        endpoint=url,
    )


def test_a_certificate_nobody_signed_is_refused_as_a_tls_failure(tls_receiver):
    reports = Reports()
    sink = tls_sink(tls_receiver.url, reports)

    started = time.monotonic()
    sink.send(take_sample(), SOURCE, DYNO)

    assert time.monotonic() - started < BUDGET
    assert [(r["event"], r["reason"]) for r in reports] == [("push_failed", "tls")]
    assert waiting(sink) == 1
    assert tls_receiver.requests == []


def test_a_trusted_endpoint_receives_the_sample_over_tls(tls_receiver, certificate):
    reports = Reports()
    sink = tls_sink(tls_receiver.url, reports, trusted_cert=certificate[1])

    sink.send(take_sample(), SOURCE, DYNO)
    sink.send(take_sample(), SOURCE, DYNO)

    assert reports == []
    assert waiting(sink) == 0
    assert len(tls_receiver.requests) == 2


def test_a_slow_drip_inside_tls_is_cut_at_the_deadline(tls_receiver, certificate):
    tls_receiver.default = Reply(200, body=b"{}", drip_every=0.2)
    reports = Reports()
    sink = tls_sink(tls_receiver.url, reports, trusted_cert=certificate[1])

    started = time.monotonic()
    sink.send(take_sample(), SOURCE, DYNO)
    duration = time.monotonic() - started

    assert BUDGET - 0.05 <= duration < BUDGET + SLACK
    assert [(r["event"], r["reason"]) for r in reports] == [("push_failed", "timeout")]
    assert waiting(sink) == 1


def certificate_for(folder, name: str):
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key, cert


@pytest.mark.parametrize(
    ("served_name", "accepted"), [("collector.test", True), ("evil.test", False)]
)
def test_the_certificate_is_checked_for_the_urls_name_though_the_address_is_looked_up_first(
    tmp_path, served_name, accepted
):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a throwaway certificate")
    key, cert = certificate_for(tmp_path, served_name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names: list[str] = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    receiver = Receiver(tls=context)
    (tmp_path / "hosts").write_text("127.0.0.1 collector.test\n")
    url = f"https://collector.test:{receiver.port}/v1/metrics"
    reports = Reports()
    sink = Sink(
        OtlpProtocol(url, Dyno(), "host", time.time()),
        HttpTransport(
            {},
            resolver=Resolver(str(tmp_path / "hosts"), str(tmp_path / "no-resolv.conf")),
            ca_file=str(cert),
        ),
        interval=INTERVAL,
        report=reports,
        endpoint="https://collector.test",
    )
    try:
        sink.send(take_sample(), SOURCE, DYNO)
    finally:
        receiver.stop()
    assert server_names == ["collector.test"]  # SNI carries the URL's name, not 127.0.0.1
    if accepted:
        assert reports == []
        assert len(receiver.requests) == 1
    else:
        assert [(r["event"], r["reason"]) for r in reports] == [("push_failed", "tls")]
        assert receiver.requests == []
