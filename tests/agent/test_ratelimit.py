"""The one rate limiter every repeated line goes through."""

from __future__ import annotations

from dynostat.ratelimit import ONCE, RateLimiter


def test_the_rate_limiter_counts_what_it_held_back_and_forgets_old_keys():
    limiter = RateLimiter(every=60.0, max_keys=3)
    assert limiter.allow("a", 0.0) == (True, 0)
    assert limiter.allow("a", 10.0) == (False, 0)
    assert limiter.allow("a", 59.9) == (False, 0)
    assert limiter.allow("a", 60.0) == (True, 2)
    for key in "bcdef":
        limiter.allow(key, 61.0)
    assert len(limiter._entries) == 3  # capped: a key that changes every call cannot grow the state
    assert limiter.allow("zz", 500.0) == (True, 0)
    assert len(limiter._entries) == 1  # everything older than a minute was pruned


def test_a_key_may_have_its_own_period_or_go_through_once_ever():
    limiter = RateLimiter(every=60.0)
    assert limiter.allow("source", 0.0, every=ONCE) == (True, 0)
    assert limiter.allow("source", 10**9, every=ONCE) == (False, 0)
    assert limiter.allow("push", 0.0, every=5.0) == (True, 0)
    assert limiter.allow("push", 4.0, every=5.0) == (False, 0)
    assert limiter.allow("push", 5.0, every=5.0) == (True, 1)


def test_due_says_whether_a_key_would_go_through_without_recording_it():
    limiter = RateLimiter(every=60.0)
    assert limiter.due("k", 0.0)
    assert limiter.due("k", 0.0)  # asking twice changes nothing
    limiter.allow("k", 0.0)
    assert not limiter.due("k", 59.0)
    assert limiter.due("k", 60.0)
    assert limiter.allow("k", 60.0) == (True, 0)  # due() held nothing back
