"""A broken endpoint costs a push, never the loop: bounded sends, a bounded buffer, no secrets.

Every test runs the sink the agent runs (make_sink, requests, real sockets) against a receiver
on 127.0.0.1 that refuses, hangs, drips, fails or answers garbage. With an interval of 2 s a
send may take at most min(5 s, 2 s / 2) = 1 s, whatever it re-sends.
"""

from __future__ import annotations

import time

import pytest
from otlp_bodies import parse_received, points
from push_sample import DYNO, SOURCE, sink_from_env, take_sample, waiting
from push_servers import Reply

from dynostat import logfmt
from dynostat.push.sink import Pending, PushFailure, Sink, retry_after_seconds
from dynostat.push.sink import Reply as TransportReply
from support.network import free_port
from support.reports import Reports

INTERVAL = 2.0
BUDGET = 1.0  # min(5 s, INTERVAL / 2)
# Scheduling slack on a loaded 2-core machine; the budget itself is what is asserted.
SLACK = 0.35

HEADER_SECRET = "s3cr3t-header-value"
URL_PASSWORD = "hunter2-url-password"
QUERY_SECRET = "qu3ry-api-key"
SECRETS = (HEADER_SECRET, URL_PASSWORD, QUERY_SECRET)


class Agent:
    """The sink as the loop holds it, with every report rendered as the loop prints it."""

    def __init__(self, base_url: str, **env: str) -> None:
        self.reports = Reports()
        host = base_url.split("://", 1)[1]
        self.env = {
            "DYNOSTAT_URL": f"http://dyno:{URL_PASSWORD}@{host}/v1/metrics?key={QUERY_SECRET}",
            "DYNOSTAT_PUSH_HEADERS": f"X-Api-Key={HEADER_SECRET},X-Team=zombies",
            **env,
        }
        self.sink = sink_from_env(self.env, INTERVAL, self.reports)
        assert self.sink is not None
        self.sent_times: list[float] = []

    def send(self) -> float:
        """One tick's push of a fresh sample; returns how long the send took."""
        sample = take_sample(push_dropped=self.sink.dropped)
        # Distinct, increasing sample times even when ticks follow each other within 1 ms.
        sample.wall_time = 1_700_000_000.0 + len(self.sent_times)
        self.sent_times.append(sample.wall_time)
        started = time.monotonic()
        self.sink.send(sample, SOURCE, DYNO)
        return time.monotonic() - started

    def lines(self) -> list[str]:
        return [logfmt.line(report) for report in self.reports]

    def reasons(self) -> list[tuple]:
        return [(r["event"], r["reason"], r.get("status")) for r in self.reports]


def sample_time(received) -> float:
    """The time of the sample a request carried (every point of one request has it)."""
    times = {point.time_unix_nano for _, point in points(parse_received(received)).values()}
    [time_ns] = times
    return time_ns / 1e9


def dropped_value(received) -> int:
    return points(parse_received(received))[("dynostat.push.dropped", ())][1].as_int


@pytest.fixture
def no_secret_printed(capsys):
    agents: list[Agent] = []
    yield agents.append
    printed = capsys.readouterr()
    text = "\n".join(line for agent in agents for line in agent.lines())
    text += printed.out + printed.err
    for secret in SECRETS:
        assert secret not in text


def test_a_refused_connection_keeps_the_sample_and_says_so_once(no_secret_printed):
    agent = Agent(f"http://127.0.0.1:{free_port()}")
    no_secret_printed(agent)

    durations = [agent.send(), agent.send()]

    assert max(durations) < BUDGET
    assert agent.reasons() == [("push_failed", "refused", None)]
    assert waiting(agent.sink) == 2
    assert agent.sink.dropped == 0
    [line] = agent.lines()
    assert line.startswith("at=error event=push_failed protocol=otlp ")
    assert "endpoint=http://127.0.0.1:" in line


def test_a_name_that_does_not_resolve_is_a_dns_failure(no_secret_printed):
    agent = Agent("http://dynostat-push-test.invalid:4318")
    no_secret_printed(agent)

    duration = agent.send()

    assert duration < BUDGET + SLACK
    assert agent.reasons() == [("push_failed", "dns", None)]
    assert waiting(agent.sink) == 1


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(hang=10), id="hanging past the budget"),
        # One byte every 0.2 s never trips a per-read timeout of 1 s; only a deadline stops it.
        pytest.param(Reply(200, body=b"{}", drip_every=0.2), id="dripping a byte at a time"),
    ],
)
def test_an_endpoint_that_hangs_or_drips_costs_one_budget(receiver, no_secret_printed, reply):
    receiver.default = reply
    agent = Agent(receiver.url)
    no_secret_printed(agent)

    duration = agent.send()

    assert BUDGET - 0.05 <= duration < BUDGET + SLACK
    assert agent.reasons() == [("push_failed", "timeout", None)]
    assert waiting(agent.sink) == 1


def test_a_garbage_answer_is_reported_and_the_sample_kept(receiver, no_secret_printed):
    receiver.default = Reply(garbage=b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    agent = Agent(receiver.url)
    no_secret_printed(agent)

    duration = agent.send()

    assert duration < BUDGET
    assert agent.reasons() == [("push_failed", "bad_response", None)]
    assert waiting(agent.sink) == 1


def test_a_garbage_body_on_success_is_reported_but_not_resent(receiver, no_secret_printed):
    receiver.default = Reply(200, body=b"<html>not OTLP</html>")
    agent = Agent(receiver.url)
    no_secret_printed(agent)

    agent.send()

    assert agent.reasons() == [("push_failed", "bad_response", 200)]
    assert waiting(agent.sink) == 0
    assert len(receiver.requests) == 1


def test_samples_failed_with_500s_are_resent_oldest_first_once_it_recovers(
    receiver, no_secret_printed
):
    receiver.default = Reply(500, body=b"upstream down")
    agent = Agent(receiver.url)
    no_secret_printed(agent)

    for _ in range(3):
        assert agent.send() < BUDGET
    assert waiting(agent.sink) == 3
    # Three failures of one kind within a minute: one line, not three.
    assert agent.reasons() == [("push_failed", "http_status", 500)]

    receiver.default = Reply(200)
    agent.send()

    assert waiting(agent.sink) == 0
    assert agent.sink.dropped == 0
    times = [sample_time(request) for request in receiver.requests]
    # Each failed tick tried only its oldest sample; then all four go out, oldest first.
    assert times == [agent.sent_times[0]] * 3 + agent.sent_times
    # The secrets went where they belong: in the request, not in any line.
    assert receiver.requests[-1].headers["X-Api-Key"] == HEADER_SECRET
    assert receiver.requests[-1].path == f"/v1/metrics?key={QUERY_SECRET}"
    assert receiver.requests[-1].headers["Authorization"].startswith("Basic ")


def test_a_full_buffer_drops_the_oldest_and_counts_every_drop(receiver, no_secret_printed):
    receiver.default = Reply(503)
    agent = Agent(receiver.url, DYNOSTAT_PUSH_BUFFER="3")
    no_secret_printed(agent)

    for _ in range(7):
        agent.send()
    assert waiting(agent.sink) == 3
    assert agent.sink.dropped == 4

    receiver.default = Reply(200)
    receiver.requests.clear()
    agent.send()

    # The three newest failed samples, then this tick's, oldest first.
    delivered = [sample_time(request) for request in receiver.requests]
    assert delivered == agent.sent_times[4:]
    # Each body carries the drop count of its own tick, as that tick's line printed it.
    assert [dropped_value(request) for request in receiver.requests] == [1, 2, 3, 4]
    assert agent.sink.dropped == 4
    assert waiting(agent.sink) == 0


def test_a_429_with_retry_after_is_honoured_before_anything_is_sent_again(
    receiver, no_secret_printed
):
    receiver.script.append(Reply(429, {"Retry-After": "2"}))
    agent = Agent(receiver.url)
    no_secret_printed(agent)

    agent.send()
    agent.send()  # within the two seconds: nothing may go out
    assert len(receiver.requests) == 1
    assert waiting(agent.sink) == 2
    assert [(r["reason"], r["status"], r["retry_after"]) for r in agent.reports] == [
        ("http_status", 429, 2)
    ]

    time.sleep(2.1)
    agent.send()

    assert waiting(agent.sink) == 0
    delivered = [sample_time(request) for request in receiver.requests[1:]]
    assert delivered == agent.sent_times


def test_a_client_error_rejects_that_sample_for_good_and_counts_it(receiver, no_secret_printed):
    receiver.script.append(Reply(400, body=b"bad metric"))
    agent = Agent(receiver.url)
    no_secret_printed(agent)

    agent.send()
    agent.send()

    assert waiting(agent.sink) == 0
    assert agent.sink.dropped == 1
    assert [(r["status"], r.get("rejected")) for r in agent.reports] == [(400, "true")]
    assert len(receiver.requests) == 2


def test_resending_a_backlog_stops_at_the_budget_and_keeps_the_rest(receiver, no_secret_printed):
    receiver.default = Reply(500)
    agent = Agent(receiver.url)
    no_secret_printed(agent)
    for _ in range(5):
        agent.send()
    # Now every answer takes 0.3 s: six samples would need 1.8 s, the budget is 1 s.
    receiver.default = Reply(200, hang=0.3)
    receiver.requests.clear()

    duration = agent.send()

    assert duration < BUDGET + SLACK
    started = len(receiver.requests)
    assert 2 <= started <= 4
    # The request cut by the deadline (if any) counts as not delivered and stays.
    assert waiting(agent.sink) in (6 - started, 7 - started)

    receiver.default = Reply(200)
    agent.send()
    assert waiting(agent.sink) == 0
    delivered = [sample_time(request) for request in receiver.requests]
    # Oldest first throughout; a sample cut off at the deadline is sent once more.
    assert sorted(set(delivered)) == agent.sent_times
    assert delivered == sorted(delivered)


def test_a_retry_after_date_in_the_past_or_future_is_read_and_capped():
    assert retry_after_seconds("120", 0.0) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == 60.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", 500.0) == 0.0
    assert retry_after_seconds("999999999", 0.0) == 3600.0
    assert retry_after_seconds("soon", 0.0) is None
    assert retry_after_seconds(None, 0.0) is None


class ScriptedTransport:
    """A transport that fails as told, for what needs an injected clock."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, method, url, body, content_type, deadline):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class FakeProtocol:
    name = "otlp"
    method = "POST"
    content_type = "application/x-protobuf"

    def request(self, sample, source, dyno, dropped):
        return Pending("http://x/v1/metrics", f"{sample.wall_time}".encode())

    @staticmethod
    def problem(body, content_type=None):
        return None


def test_repeated_failures_print_once_a_minute_with_the_count_held_back():
    now = [100.0]
    reports = Reports()
    transport = ScriptedTransport([PushFailure("refused")] * 5 + [TransportReply(200, None, b"")])
    sink = Sink(
        FakeProtocol(),
        transport,
        interval=20,
        report=reports,
        endpoint="http://x",
        clock=lambda: now[0],
    )

    for _ in range(5):  # at 100, 120, 140, 160 and 180 s
        reports.now = now[0]  # the agent's reporter and the sink share the monotonic clock
        sink.send(take_sample(), SOURCE, DYNO)
        now[0] += 20

    # The first failure prints; 120 and 140 are held back; 160 is a minute later and prints
    # with the two held back; 180 is held back again.
    assert [(r["reason"], r.get("repeated")) for r in reports] == [
        ("refused", None),
        ("refused", 2),
    ]
    assert transport.calls == 5


def test_a_sink_bug_is_one_error_line_never_an_exception():
    reports = Reports()
    sink = sink_from_env({"DYNOSTAT_URL": "http://127.0.0.1:9/v1/metrics"}, 20, reports)
    broken = take_sample()
    broken.wall_time = None

    sink.send(broken, SOURCE, DYNO)

    assert [(r["event"], r["reason"], r["error"]) for r in reports] == [
        ("push_failed", "internal", "TypeError")
    ]
