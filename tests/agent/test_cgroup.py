"""cgroup v1 and v2 memory and pids files, found from <proc>/self/cgroup."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat import cgroup
from dynostat.cgroup import CgroupReader
from dynostat.procfs import MalformedError, read_file
from dynostat.sample import Memory
from support.paths import FIXTURES


def plain_read(path, parse):
    """A reader without the sampler's policy: missing is None, the rest raises."""
    try:
        return parse(read_file(path))
    except FileNotFoundError:
        return None


def reader_for(scenario: str) -> CgroupReader:
    root = FIXTURES / scenario
    self_cgroup = cgroup.parse_self_cgroup((root / "proc/self/cgroup").read_bytes())
    return CgroupReader(str(root / "cgroup"), self_cgroup, plain_read)


def test_self_cgroup_maps_v1_controllers_named_hierarchies_and_the_unified_line():
    data = (FIXTURES / "captured-dyno-like/proc/self/cgroup").read_bytes()
    paths = cgroup.parse_self_cgroup(data)
    assert paths["memory"] == "/dynostat-capture"
    assert paths["pids"] == "/dynostat-capture"
    assert paths["cpu"] == "/" and paths["cpuacct"] == "/"
    assert paths["name=systemd"] == "/"
    assert paths[cgroup.UNIFIED] == "/"


def test_self_cgroup_splits_comma_joined_controllers():
    assert cgroup.parse_self_cgroup(b"4:cpu,cpuacct:/a\n") == {"cpu": "/a", "cpuacct": "/a"}


def test_v1_reads_total_counters_and_the_limit_from_the_own_cgroup_not_the_root():
    reader = reader_for("cgroup-v1")
    assert reader.version == 1
    assert reader.memory() == Memory(
        rss=211025920,
        cache=10792960,
        swap=4096,
        pgpgin=123,
        pgpgout=45,
        quota=536870912,
        oom_kills=2,
    )
    assert reader.pids() == (256, 52)


def test_v1_without_total_counters_uses_the_plain_ones_and_a_limit_near_2_63_is_no_quota():
    """The self/cgroup path does not exist (a cgroup namespace), so the root is used."""
    reader = reader_for("cgroup-v1-no-limit")
    assert reader.memory_dir.endswith("cgroup-v1-no-limit/cgroup/memory")
    assert reader.memory() == Memory(
        rss=2097152, cache=1048576, swap=0, pgpgin=7, pgpgout=3, quota=None
    )
    assert reader.pids() == (None, None)  # no pids controller: absent, not zero


def test_v2_reads_anon_file_swap_and_max_and_has_no_page_counters():
    reader = reader_for("cgroup-v2")
    assert reader.version == 2
    assert reader.memory_dir.endswith("cgroup-v2/cgroup/dyno")
    assert reader.memory() == Memory(
        rss=209715200,
        cache=10485760,
        swap=8192,
        pgpgin=None,
        pgpgout=None,
        quota=536870912,
        oom_kills=3,
    )
    assert reader.pids() == (512, 6)


def test_v2_max_means_no_quota_and_no_pids_limit():
    reader = reader_for("cgroup-v2-max")
    assert reader.memory() == Memory(rss=1000, cache=2000, swap=None, quota=None)
    assert reader.pids() == (None, 6)


def test_no_cgroup_at_all_gives_no_memory_and_no_pids():
    reader = reader_for("no-cgroup")
    assert reader.version is None
    assert reader.memory() is None
    assert reader.pids() == (None, None)


def test_a_capture_from_this_machine_in_a_dyno_like_cgroup():
    reader = reader_for("captured-dyno-like")
    memory = reader.memory()
    assert reader.version == 1
    assert memory.quota == 512 * 1024 * 1024
    assert memory.rss == 2674688 and memory.cache == 749568 and memory.swap == 0
    # pids.current counted the capture process, the zombie parent, its 3 zombies and the
    # threaded process's 5 threads.
    assert reader.pids() == (256, 10)


def test_this_machines_own_cgroup_is_found_and_readable():
    self_cgroup = cgroup.parse_self_cgroup(read_file("/proc/self/cgroup"))
    reader = CgroupReader("/sys/fs/cgroup", self_cgroup, plain_read)
    memory = reader.memory()
    if reader.version is None:
        pytest.skip("this machine exposes no memory cgroup")
    assert memory is not None and memory.rss is not None and memory.rss > 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"max\n", None),
        (b"536870912\n", 536870912),
        (b"9223372036854771712\n", None),
        (b"9223372036854775807\n", None),
        (b"4611686018427387903\n", 4611686018427387903),
        (b"0\n", 0),
    ],
)
def test_limits(data, expected):
    assert cgroup.parse_limit(data) == expected


@pytest.mark.parametrize("data", [b"", b"-1\n", b"lots\n", b"\xff\n", b"12 13\n"])
def test_malformed_limits_raise(data):
    with pytest.raises(MalformedError):
        cgroup.parse_limit(data)


@pytest.mark.parametrize("data", [b"rss\n", b"rss 1 2\n", b"rss x\n", b"\xff 1\n"])
def test_malformed_memory_stat_lines_raise(data):
    with pytest.raises(MalformedError):
        cgroup.parse_flat_keyed(data)


@pytest.mark.parametrize(
    ("data", "kills"),
    [
        (b"oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", 7),  # v1 memory.oom_control
        (b"low 0\nhigh 3\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n", 2),  # v2 events
        (b"oom_kill_disable 0\nunder_oom 0\n", None),  # v1 before Linux 4.13: not counted
        (b"", None),
    ],
)
def test_the_oom_kill_count_comes_from_oom_control_or_events(data, kills):
    assert cgroup.parse_oom_kills(data) == kills


@pytest.mark.parametrize("data", [b"oom_kill -1\n", b"oom_kill x\n", b"oom_kill\n"])
def test_malformed_oom_kill_counts_raise(data):
    with pytest.raises(MalformedError):
        cgroup.parse_oom_kills(data)


@pytest.mark.parametrize("data", [b"garbage\n", b"1:memory\n", b"1:memory:relative\n"])
def test_malformed_self_cgroup_raises(data):
    with pytest.raises(MalformedError):
        cgroup.parse_self_cgroup(data)


@pytest.mark.parametrize(
    ("parse", "valid"),
    [
        (cgroup.parse_self_cgroup, lambda v: all(p.startswith("/") for p in v.values())),
        (cgroup.parse_flat_keyed, lambda v: all(isinstance(n, int) for n in v.values())),
        (cgroup.parse_count, lambda v: v >= 0),
        (cgroup.parse_limit, lambda v: v is None or 0 <= v < cgroup.V1_NO_LIMIT),
        (cgroup.parse_oom_kills, lambda v: v is None or v >= 0),
    ],
)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_parse_to_a_valid_value_or_raise_malformed_error(parse, valid, data):
    try:
        value = parse(data)
    except MalformedError:
        return
    assert valid(value)


def test_v2_pids_without_a_memory_controller_are_still_found():
    reader = reader_for("cgroup-v2-pids-only")
    assert reader.memory() is None
    assert reader.pids() == (300, 4)
