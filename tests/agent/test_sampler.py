"""Sampler: every source together, the error policy, and what is reported (once)."""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynostat import procfs
from dynostat.sample import Culprit, LoadAvg, Memory, Tasks
from dynostat.sampler import Sampler, make_sampler, restricted_slack
from support.listing import Listing
from support.paths import FIXTURES
from support.reports import Reports
from support.unprivileged import as_nobody

MB = 1024 * 1024
PAGE = procfs.PAGE_SIZE


def sampler_for(scenario: str, root: Path = FIXTURES, **kwargs) -> tuple[Sampler, Reports]:
    reports = Reports()
    sampler = Sampler(
        str(root / scenario / "proc"), str(root / scenario / "cgroup"), report=reports, **kwargs
    )
    return sampler, reports


def test_a_v1_dyno_gives_every_metric_and_culprit_with_nothing_reported():
    sampler, reports = sampler_for("cgroup-v1")
    sample = sampler.sample(1700000000.5)
    assert sample.wall_time == 1700000000.5
    assert sample.load == LoadAvg(1.5, 0.75, 0.25)
    # Each memory figure is the cgroup reader's (tests/agent/test_cgroup.py checks them all).
    memory = sample.memory
    assert (memory.total, memory.quota, memory.oom_kills) == (
        211025920 + 10792960 + 4096,
        512 * MB,
        2,
    )
    # tasks_limit is the lower of RLIMIT_NPROC (96365 in the captured limits) and pids.max.
    assert sample.tasks == Tasks(tasks=52, processes=7, threads=52, zombies=4, limit=256)
    assert sample.zombie_parents == [Culprit(11, "ruby", 3), Culprit(10, "puma 6.4.2 (tcp", 1)]
    assert sample.top_threads == [Culprit(10, "puma 6.4.2 (tcp", 40), Culprit(11, "ruby", 7)]
    assert sample.top_rss == [
        Culprit(10, "puma 6.4.2 (tcp", 51200 * PAGE),
        Culprit(11, "ruby", 25600 * PAGE),
        Culprit(1, "bash", 900 * PAGE),
    ]
    # PSS of the processes with most rss, from their smaps_rollup; no worker group (pid 11
    # is puma's only live child).
    assert sample.top_pss == [
        Culprit(10, "puma 6.4.2 (tcp", 120000 * 1024),
        Culprit(11, "ruby", 60000 * 1024),
        Culprit(1, "bash", 1200 * 1024),
    ]
    assert sample.workers is None
    assert sample.oom_victim is None
    assert reports == []


def test_top_limits_every_culprit_list():
    sampler, _ = sampler_for("cgroup-v1", top=1)
    sample = sampler.sample(0)
    assert [len(sample.zombie_parents), len(sample.top_threads), len(sample.top_rss)] == [1, 1, 1]


def test_comms_with_parentheses_are_named_whole_in_the_culprits():
    sampler, _ = sampler_for("comm-with-parens")
    sample = sampler.sample(0)
    assert sample.top_rss == [
        Culprit(584, "((a b ) ( c d) )", 2048 * PAGE),
        Culprit(585, ") Z 1 2 3 (", 100 * PAGE),
    ]
    assert sample.top_threads == [Culprit(584, "((a b ) ( c d) )", 3)]


def test_no_cgroup_and_unlimited_nproc_leave_memory_and_the_limit_out():
    sampler, reports = sampler_for("comm-with-parens")
    sample = sampler.sample(0)
    assert sample.memory is None
    assert sample.tasks == Tasks(tasks=4, processes=2, threads=4, zombies=0, limit=None)
    assert sample.zombie_parents == []
    assert sample.top_threads == [Culprit(584, "((a b ) ( c d) )", 3)]
    assert reports == []


def test_v2_max_leaves_the_quota_out_and_the_limit_comes_from_nproc_alone():
    sampler, reports = sampler_for("cgroup-v2-max")
    sample = sampler.sample(0)
    assert sample.memory.quota is None
    assert sample.tasks.limit == 96365
    assert sample.tasks.tasks == 6  # the cgroup's pids.current
    assert reports == []


def test_v2_pids_max_is_the_limit_when_it_is_lower():
    sampler, _ = sampler_for("cgroup-v2")
    assert sampler.sample(0).tasks.limit == 512


@pytest.mark.parametrize("scenario", ["empty-files", "garbage-files"])
def test_empty_and_garbage_files_are_reported_once_each_and_the_rest_still_sampled(scenario):
    sampler, reports = sampler_for(scenario)
    first = sampler.sample(0)
    assert first.load is None
    assert first.tasks.processes == 1 and first.tasks.threads == 2
    assert first.tasks.limit is None
    assert first.top_threads == [Culprit(9, "survivor", 2)]
    paths = sorted(Path(report["path"]).relative_to(FIXTURES / scenario) for report in reports)
    assert all(report["event"] == "source_malformed" for report in reports)
    # Two malformed pids give one line: pids come and go, the agent's memory must not grow.
    pid_lines = [p for p in paths if p.name == "stat"]
    assert len(pid_lines) == 1
    assert Path("proc/self/limits") in paths
    assert Path("proc/loadavg") in paths
    # An empty self/cgroup is a process in no cgroup: valid, the hierarchy roots are used.
    assert (Path("proc/self/cgroup") in paths) == (scenario == "garbage-files")
    assert Path("cgroup/memory/memory.limit_in_bytes") in paths
    assert Path("cgroup/pids/pids.max") in paths
    count = len(reports)
    second = sampler.sample(1)
    assert len(reports) == count, "a broken file is reported once, not every tick"
    assert second.tasks.processes == 1


def test_a_missing_proc_root_is_reported_and_leaves_tasks_out(tmp_path):
    reports = Reports()
    sample = Sampler(str(tmp_path / "nothing"), str(tmp_path), report=reports).sample(0)
    assert sample.tasks is None and sample.load is None and sample.memory is None
    assert reports == [
        {
            "at": "error",
            "event": "source_unreadable",
            "path": str(tmp_path / "nothing"),
            "error": "No such file or directory",
        }
    ]


def dyno_copy(tmp_path: Path, pids_current: str | None = None) -> tuple[Sampler, Reports]:
    """A writable copy of the v1 dyno fixture, whose /proc shows 7 processes and 52 tasks."""
    shutil.copytree(FIXTURES / "cgroup-v1", tmp_path / "dyno")
    if pids_current is not None:
        set_pids_current(tmp_path, pids_current)
    return sampler_for("dyno", root=tmp_path)


def set_pids_current(tmp_path: Path, value: str) -> None:
    (tmp_path / "dyno/cgroup/pids/dyno/pids.current").write_text(value + "\n")


def test_tasks_is_the_pids_cgroup_s_count_and_a_proc_that_shows_less_is_said_once(tmp_path):
    # As under hidepid: the cgroup counts 87 tasks, /proc shows 52 of them.
    sampler, reports = dyno_copy(tmp_path, "87")
    first = sampler.sample(0)
    assert first.tasks == Tasks(tasks=87, processes=7, threads=52, zombies=4, limit=256)
    assert reports == [], "one short sample may be tasks starting during the scan"
    for tick in range(1, 5):
        assert sampler.sample(tick).tasks.tasks == 87
    assert reports == [
        {
            "at": "warn",
            "event": "proc_restricted",
            "visible_tasks": 52,
            "cgroup_tasks": 87,
            "visible_processes": 7,
            "path": str(tmp_path / "dyno/proc"),
        }
    ]


def test_a_shortfall_within_the_churn_of_a_scan_or_on_one_sample_only_is_not_reported(
    tmp_path,
):
    sampler, reports = dyno_copy(tmp_path, str(52 + restricted_slack(52)))
    for tick in range(3):
        assert sampler.sample(tick).tasks.tasks == 52 + restricted_slack(52)
    # Far short on one sample, then not: a burst of forks during a scan, not a hidden /proc.
    # A sample whose cgroup count could not be read confirms nothing either.
    for tick, count in enumerate(["90", "52", "90", "40", "90", "", "90"], start=3):
        set_pids_current(tmp_path, count)
        assert sampler.sample(tick).tasks.tasks == (int(count) if count else 52)
    assert [report["event"] for report in reports] == ["source_malformed"]


def test_without_a_readable_pids_cgroup_tasks_is_the_sum_over_proc(tmp_path):
    sampler, reports = dyno_copy(tmp_path)
    (tmp_path / "dyno/cgroup/pids/dyno/pids.current").unlink()
    sample = sampler.sample(0)
    assert sample.tasks == Tasks(tasks=52, processes=7, threads=52, zombies=4, limit=256)
    assert reports == []


def test_an_empty_proc_root_leaves_every_task_count_out_and_says_so_once(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    reports = Reports()
    sampler = Sampler(str(empty), str(tmp_path), report=reports)
    for tick in range(3):
        sample = sampler.sample(tick)
        assert sample.tasks is None
        assert sample.zombie_parents == sample.top_threads == sample.top_rss == []
    assert reports == [{"at": "warn", "event": "proc_empty", "path": str(empty)}]


def test_an_empty_proc_root_still_gives_the_cgroup_s_tasks_and_limit(tmp_path):
    # A container's view: the agent's pids cgroup is the root of the cgroup tree it sees.
    empty = tmp_path / "empty"
    empty.mkdir()
    pids = tmp_path / "cgroup/pids"
    pids.mkdir(parents=True)
    (pids / "pids.max").write_text("256\n")
    (pids / "pids.current").write_text("31\n")
    reports = Reports()
    sample = Sampler(str(empty), str(tmp_path / "cgroup"), report=reports).sample(0)
    assert sample.tasks == Tasks(tasks=31, processes=None, threads=None, zombies=None, limit=256)
    assert [r["event"] for r in reports] == ["proc_empty"]


def test_a_bug_in_one_source_is_reported_once_and_the_others_survive(monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(procfs, "zombie_parents", broken)
    sampler, reports = sampler_for("cgroup-v1")
    sample = sampler.sample(0)
    sampler.sample(1)
    assert sample.load is not None and sample.memory is not None
    assert sample.tasks.zombies == 4  # filled before the culprits failed
    assert reports == [
        {
            "at": "error",
            "event": "source_failed",
            "path": str(FIXTURES / "cgroup-v1/proc"),
            "error": "RuntimeError: boom",
        }
    ]


def test_vanished_pids_are_skipped_silently(tmp_path, monkeypatch):
    shutil.copytree(FIXTURES / "cgroup-v1", tmp_path / "dyno")
    proc = tmp_path / "dyno/proc"

    def scandir_with_ghosts(path):
        """Pid 10 exits after the listing; pid 424242 was listed but is long gone."""
        names = [*os.listdir(path), b"424242"]
        for file in (proc / "10").iterdir():  # not rmtree: it would call the patched scandir
            file.unlink()
        (proc / "10").rmdir()
        return Listing(names)

    monkeypatch.setattr(os, "scandir", scandir_with_ghosts)
    sampler, reports = sampler_for("dyno", root=tmp_path)
    sample = sampler.sample(0)
    assert sample.tasks.processes == 6
    assert reports == []


def sample_unprivileged(proc_root: str, cgroup_root: str) -> tuple[list[dict], list[dict]]:
    """Sample twice as the 'nobody' user (root ignores mode bits, so a real EACCES needs a
    real unprivileged process): what the test looks at of each sample, and the reports."""

    def work():
        reports = Reports()
        sampler = Sampler(proc_root, cgroup_root, report=reports)
        samples = [
            {
                "load": sample.load is not None,
                "memory": sample.memory and vars_of(sample.memory),
                "processes": sample.tasks.processes,
                "tasks": sample.tasks.tasks,
                "zombie_parents": [[c.pid, c.comm] for c in sample.zombie_parents],
            }
            for sample in (sampler.sample(0), sampler.sample(1))
        ]
        return [samples, list(reports)]

    samples, reports = as_nobody(work)
    return samples, reports


def vars_of(record) -> dict:
    return {name: getattr(record, name) for name in record.__slots__}


def test_permission_denied_files_are_reported_once():
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="dynostat-perm-"))
    try:
        shutil.copytree(FIXTURES / "cgroup-v1", top / "dyno")
        for directory in [top, *(p for p in top.rglob("*") if p.is_dir())]:
            directory.chmod(0o755)
        for file in (p for p in top.rglob("*") if p.is_file()):
            file.chmod(0o644)
        for denied in (
            "proc/loadavg",
            "proc/10/stat",
            "proc/11/stat",
            "cgroup/memory/dyno/memory.stat",
        ):
            (top / "dyno" / denied).chmod(0)
        samples, reports = sample_unprivileged(str(top / "dyno/proc"), str(top / "dyno/cgroup"))
    finally:
        shutil.rmtree(top)
    first, second = samples
    assert first["load"] is False
    # memory.stat denied, the limit and the OOM kill count still read
    assert first["memory"] == vars_of(Memory(quota=536870912, oom_kills=2))
    assert first["processes"] == second["processes"] == 5
    # The pids cgroup still counts the two hidden processes' 47 tasks, and says so once.
    assert first["tasks"] == second["tasks"] == 52
    *errors, restricted = reports
    assert restricted == {
        "at": "warn",
        "event": "proc_restricted",
        "visible_tasks": 5,
        "cgroup_tasks": 52,
        "visible_processes": 5,
        "path": str(top / "dyno/proc"),
    }
    reports = errors
    assert {(r["event"], r["error"]) for r in reports} == {
        ("source_unreadable", "permission denied")
    }
    reported = {Path(r["path"]).relative_to(top / "dyno") for r in reports}
    assert len(reported) == 3, "one line for all denied pids, one per source file"
    assert Path("cgroup/memory/dyno/memory.stat") in reported
    assert Path("proc/loadavg") in reported
    assert reported & {Path("proc/10/stat"), Path("proc/11/stat")}
    # Zombie parents 10 and 11 cannot be named: their stat is denied, so they are '?'.
    assert first["zombie_parents"] == [[11, "?"], [10, "?"]]


def refused_to_this_process(path: str) -> bool:
    """Whether the kernel refuses this process a file (for root too: an LSM, a process in
    another user namespace, an undumpable one without CAP_SYS_PTRACE over it)."""
    try:
        Path(path).read_bytes()
    except PermissionError:
        return True
    except OSError:
        return False
    return False


def test_this_machine_is_sampled_without_any_error():
    reports = Reports()
    sample = Sampler(report=reports).sample(0)
    # The one thing this machine may say: a smaps_rollup the kernel refuses even to root
    # (this machine's pid 1), once, as a warning; its figures are left out.
    refused = [r for r in reports if r["event"] == "pss_unreadable"]
    assert [r for r in reports if r not in refused] == []
    assert len(refused) <= 1
    assert all(refused_to_this_process(r["path"]) for r in refused)
    assert all(c.pid != r["pid"] for c in sample.top_pss for r in refused)
    assert sample.load is not None
    assert sample.tasks.processes > 1
    assert sample.tasks.threads >= sample.tasks.processes
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY:
        assert sample.tasks.limit <= soft
    mine = [c for c in sample.top_rss if c.pid == os.getpid()]
    assert not mine or mine[0].count > 0


def test_make_sampler_gives_the_procfs_sampler_where_proc_exists():
    assert type(make_sampler("/proc", "/sys/fs/cgroup", 3, Reports())) is Sampler


FUZZED_FILES = (
    "proc/loadavg",
    "proc/self/cgroup",
    "proc/self/limits",
    "proc/10/stat",
    "proc/20/stat",
    "cgroup/memory/dyno/memory.stat",
    "cgroup/memory/dyno/memory.limit_in_bytes",
    "cgroup/memory/dyno/memory.oom_control",
    "proc/10/smaps_rollup",
    "proc/11/smaps_rollup",
    "cgroup/pids/dyno/pids.max",
    "cgroup/pids/dyno/pids.current",
)


@settings(max_examples=150, deadline=None)
@given(
    contents=st.lists(
        st.binary(max_size=300), min_size=len(FUZZED_FILES), max_size=len(FUZZED_FILES)
    )
)
def test_arbitrary_bytes_in_every_source_file_never_escape_sample(contents):
    top = Path(tempfile.mkdtemp(prefix="dynostat-fuzz-"))
    try:
        shutil.copytree(FIXTURES / "cgroup-v1", top / "dyno")
        for name, data in zip(FUZZED_FILES, contents):
            (top / "dyno" / name).write_bytes(data)
        sampler, reports = sampler_for("dyno", root=top)
        samples = [sampler.sample(0), sampler.sample(1)]
    finally:
        shutil.rmtree(top)
    for sample in samples:
        assert sample.tasks is not None
        assert sample.tasks.processes >= 5  # the untouched pids are always counted
    # A stat file made unreadable hides its tasks from /proc while the cgroup counts them.
    events = ("source_malformed", "source_unreadable", "proc_restricted")
    assert all(report["event"] in events for report in reports)
    assert len(reports) == len({(r["event"], r["path"]) for r in reports}), "each said once"
