"""<proc>/loadavg."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat.loadavg import parse_loadavg
from dynostat.procfs import MalformedError
from dynostat.sample import LoadAvg
from dynostat.sampler import Sampler
from support.paths import FIXTURES


def test_the_three_averages_are_read_and_the_task_counts_ignored():
    assert parse_loadavg(b"1.50 0.75 0.25 3/140 4242\n") == LoadAvg(1.5, 0.75, 0.25)


def test_a_fixture_tree_is_read_through_the_injected_root():
    sampler = Sampler(str(FIXTURES / "cgroup-v2/proc"), str(FIXTURES / "cgroup-v2/cgroup"))
    assert sampler.load() == LoadAvg(1.5, 0.75, 0.25)


def test_this_machines_loadavg_agrees_with_the_os_module():
    expected = os.getloadavg()
    load = Sampler().load()
    # os.getloadavg() reads the same kernel counters, rounded differently.
    for got, want in zip((load.avg_1m, load.avg_5m, load.avg_15m), expected):
        assert got == pytest.approx(want, abs=0.02)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"0.1 0.2",
        b"a b c 1/2 3",
        b"nan 0 0 1/1 1",
        b"-1 0 0 1/1 1",
        b"inf 0.1 0.1 1/1 1",
        b"\x00\xff\xfe",
    ],
)
def test_malformed_loadavg_raises_malformed_error(data):
    with pytest.raises(MalformedError):
        parse_loadavg(data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_malformed_error(data):
    try:
        load = parse_loadavg(data)
    except MalformedError:
        return
    assert min(load.avg_1m, load.avg_5m, load.avg_15m) >= 0
