"""Memory per process: PSS and USS, the largest worker group, how many fit, the OOM victim.

Crafted trees (tests/fixtures/prefork: a puma master with four workers, a zombie child, a
sidekiq, two sleeps) give exact figures; copies of them are changed between samples to play
what the kernel does (a process killed, reaped, its pid reused).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from dynostat import sampler as sampler_module
from dynostat.sample import Culprit, Memory, Workers
from dynostat.sampler import Sampler, workers_that_fit
from support.paths import FIXTURES
from support.reports import Reports
from support.smaps import rollup
from support.unprivileged import as_nobody

KB = 1024
MB = 1024 * 1024
WORKER_COMM = "puma: cluster w"  # "puma: cluster worker 0", cut to the kernel's 15 bytes


def prefork_copy(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "prefork", tmp_path / "dyno")
    return tmp_path / "dyno"


def sampler_on(root: Path, **kwargs) -> tuple[Sampler, Reports]:
    reports = Reports()
    return Sampler(str(root / "proc"), str(root / "cgroup"), report=reports, **kwargs), reports


def test_the_largest_worker_group_is_found_with_what_its_workers_cost_and_how_many_fit():
    sampler, reports = sampler_on(FIXTURES / "prefork")
    sample = sampler.sample(0)
    # 1024 MB quota, 90 %: 921.6 MB; the cgroup's rss is 600 MB, so 321.6 MB are left, and
    # each more worker adds the largest worker's USS, 31000 kB: 10 more fit beside the 4.
    assert sample.workers == Workers(
        pid=10,
        comm="puma 6.4.2 (tcp",
        workers=4,
        worker_pss=(48000 + 48200 + 47800 + 48400) * KB // 4,
        worker_uss=(1000 + 30000) * KB,
        parent_pss=54000 * KB,
        fits=14,
    )
    # The two sleeps are a group too, with far less rss; the zombie child works for nobody.
    assert sample.top_rss == [
        Culprit(20, "sidekiq 7.2.0 a", 60000 * 4096),
        Culprit(10, "puma 6.4.2 (tcp", 50000 * 4096),
        Culprit(11, WORKER_COMM, 30000 * 4096),
    ]
    # PSS of everything read (the top by rss, the workers, their parent), largest first.
    assert sample.top_pss == [
        Culprit(20, "sidekiq 7.2.0 a", 150000 * KB),
        Culprit(10, "puma 6.4.2 (tcp", 54000 * KB),
        Culprit(14, WORKER_COMM, 48400 * KB),
    ]
    assert sample.memory.oom_kills == 0
    assert reports == []


@pytest.mark.parametrize(
    "case",
    [
        (512, 260, 0, 30, 90, 4 + 6),  # (460.8 - 260) / 30 = 6.69
        (512, 260, 20, 30, 90, 4 + 6),  # swap counts: (460.8 - 280) / 30 = 6.03
        (512, 260, 25, 30, 90, 4 + 5),
        (512, 500, 0, 30, 90, 4 - 2),  # over the line already: (460.8 - 500) / 30 = -1.3
        (512, 900, 0, 30, 90, 0),  # far over: never fewer than none
        (512, 460, 0, 30, 90, 4 + 0),
        (1024, 0, 0, 1, 100, 4 + 1024),
    ],
)
def test_fits_is_the_workers_plus_the_whole_workers_that_fit_below_the_line(case):
    quota_mb, rss_mb, swap_mb, uss_mb, pct, fits = case
    memory = Memory(rss=rss_mb * MB, swap=swap_mb * MB, quota=quota_mb * MB)
    assert workers_that_fit(4, uss_mb * MB, memory, pct) == fits


def test_fits_is_left_out_without_a_quota_an_rss_or_a_worker_s_uss():
    assert workers_that_fit(4, 30 * MB, Memory(rss=100 * MB, quota=None), 90) is None
    assert workers_that_fit(4, 30 * MB, Memory(quota=512 * MB), 90) is None
    assert workers_that_fit(4, None, Memory(rss=100 * MB, quota=512 * MB), 90) is None
    assert workers_that_fit(4, 0, Memory(rss=100 * MB, quota=512 * MB), 90) is None
    assert workers_that_fit(4, 30 * MB, None, 90) is None


def test_the_share_of_the_quota_is_the_memory_warning_s(tmp_path):
    sampler, _ = sampler_on(FIXTURES / "prefork", warn_memory_pct=70)
    # 716.8 MB - 600 MB = 116.8 MB: 3 more workers of 31000 kB.
    assert sampler.sample(0).workers.fits == 7


def test_without_smaps_rollup_the_group_is_still_counted_and_the_kernel_is_said_once(
    tmp_path,
):
    root = prefork_copy(tmp_path)
    for path in root.glob("proc/*/smaps_rollup"):
        path.unlink()
    sampler, reports = sampler_on(root)
    first, second = sampler.sample(0), sampler.sample(1)
    for sample in (first, second):
        assert sample.workers == Workers(pid=10, comm="puma 6.4.2 (tcp", workers=4)
        assert sample.top_pss == []
        assert len(sample.top_rss) == 3
    [said] = reports
    assert said["at"] == "warn"
    assert said["event"] == "pss_unavailable"
    assert said["reason"] == "no smaps_rollup (Linux 4.14 or newer has it)"


def test_a_malformed_smaps_rollup_is_reported_once_and_leaves_only_that_process_out(tmp_path):
    root = prefork_copy(tmp_path)
    (root / "proc/12/smaps_rollup").write_bytes(b"\x00\xff garbage\n")
    (root / "proc/13/smaps_rollup").write_bytes(b"")
    sampler, reports = sampler_on(root)
    sample = sampler.sample(0)
    sampler.sample(1)
    assert [(r["event"], Path(r["path"]).name) for r in reports] == [
        ("source_malformed", "smaps_rollup")
    ]
    # The mean and the largest USS come from the two workers that could be read.
    assert sample.workers.worker_pss == (48000 + 48400) * KB // 2
    assert sample.workers.worker_uss == (600 + 30300) * KB
    assert sample.workers.workers == 4


def test_a_worker_that_exits_between_the_scan_and_its_smaps_rollup_is_skipped_silently(
    tmp_path, monkeypatch
):
    root = prefork_copy(tmp_path)
    real_read = sampler_module.smaps.read_smaps_rollup

    def read_after_exit(dir_fd, pid):
        if pid == 12:
            shutil.rmtree(root / "proc/12")
        return real_read(dir_fd, pid)

    monkeypatch.setattr(sampler_module.smaps, "read_smaps_rollup", read_after_exit)
    sampler, reports = sampler_on(root)
    sample = sampler.sample(0)
    assert reports == []
    assert sample.workers.worker_pss == (48000 + 47800 + 48400) * KB // 3


def test_a_group_of_hundreds_reads_at_most_64_workers_but_counts_them_all(tmp_path):
    root = prefork_copy(tmp_path)
    stat = (root / "proc/11/stat").read_text()
    for pid in range(100, 300):
        (root / "proc" / str(pid)).mkdir()
        (root / "proc" / str(pid) / "stat").write_text(
            stat.replace("11 (", f"{pid} (", 1).replace(" 30000 184467", " 100 184467")
        )
        # Garbage where the agent must not look: any read of these would be reported.
        (root / "proc" / str(pid) / "smaps_rollup").write_bytes(b"not read")
    sampler, reports = sampler_on(root)
    sample = sampler.sample(0)
    assert sample.workers.workers == 204
    assert sample.workers.worker_pss == (48000 + 48200 + 47800 + 48400) * KB // 4
    assert reports[0]["event"] == "source_malformed"  # the first 60 beyond the four real ones
    assert len(reports) == 1


def oom_copy(tmp_path: Path) -> tuple[Path, Sampler, Reports]:
    root = prefork_copy(tmp_path)
    sampler, reports = sampler_on(root)
    first = sampler.sample(0)
    assert first.oom_victim is None
    return root, sampler, reports


def kill_count(root: Path, kills: int) -> None:
    (root / "cgroup/memory/dyno/memory.oom_control").write_text(
        f"oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n"
    )


def test_when_the_oom_kill_count_rises_the_largest_process_gone_is_the_victim(tmp_path):
    root, sampler, _ = oom_copy(tmp_path)
    shutil.rmtree(root / "proc/20")  # the sidekiq, the process with most rss, killed and reaped
    shutil.rmtree(root / "proc/13")
    kill_count(root, 1)
    assert sampler.sample(1).oom_victim == Culprit(20, "sidekiq 7.2.0 a", 60000 * 4096)
    # Nothing new gone and no new kill: no victim.
    assert sampler.sample(2).oom_victim is None


def test_a_victim_not_yet_reaped_is_a_zombie_and_still_named(tmp_path):
    root, sampler, _ = oom_copy(tmp_path)
    stat = root / "proc/12/stat"
    stat.write_text(stat.read_text().replace(") S 10 ", ") Z 10 ").replace(" 30000 184", " 0 184"))
    kill_count(root, 1)
    assert sampler.sample(1).oom_victim == Culprit(12, WORKER_COMM, 30000 * 4096)


def test_a_victim_whose_pid_was_reused_at_once_is_still_named(tmp_path):
    root, sampler, _ = oom_copy(tmp_path)
    stat = root / "proc/10/stat"
    stat.write_text(stat.read_text().replace("(puma 6.4.2 (tcp)", "(sh)"))
    kill_count(root, 1)
    assert sampler.sample(1).oom_victim == Culprit(10, "puma 6.4.2 (tcp", 50000 * 4096)


def test_a_kill_of_a_process_that_came_and_went_between_samples_names_none(tmp_path):
    root, sampler, _ = oom_copy(tmp_path)
    kill_count(root, 3)
    sample = sampler.sample(1)
    assert sample.oom_victim is None
    assert sample.memory.oom_kills == 3


def test_a_count_present_from_the_start_is_not_a_kill_and_an_unknown_one_never_is(tmp_path):
    root = prefork_copy(tmp_path)
    kill_count(root, 5)
    sampler, _ = sampler_on(root)
    shutil.rmtree(root / "proc/20")
    assert sampler.sample(0).oom_victim is None  # 5 kills before the agent started
    (root / "cgroup/memory/dyno/memory.oom_control").write_text("oom_kill_disable 0\n")
    assert sampler.sample(1).memory.oom_kills is None  # a kernel before 4.13
    kill_count(root, 6)
    assert sampler.sample(2).oom_victim is None  # a rise from an unknown count


def chown_tree(root: Path, uid: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, uid)
        path.chmod(0o755 if path.is_dir() else 0o644)


def sample_as_nobody(root: Path) -> tuple[list[list], list[dict]]:
    """Two samples as 'nobody' (root ignores mode bits): each sample's top_pss pids, and the
    reports."""

    def work():
        sampler, reports = sampler_on(root)
        pids = [[c.pid for c in sampler.sample(t).top_pss] for t in (0, 1)]
        return [pids, list(reports)]

    pids, reports = as_nobody(work)
    return pids, reports


@pytest.fixture
def nobody_tree():
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="dynostat-pss-"))
    try:
        shutil.copytree(FIXTURES / "prefork", top / "dyno")
        chown_tree(top, 65534)
        yield top / "dyno"
    finally:
        shutil.rmtree(top)


def test_another_user_s_process_is_left_out_without_a_word(nobody_tree):
    os.chown(nobody_tree / "proc/20", 0, 0)  # root's, as a dyno's init or a host daemon is
    (nobody_tree / "proc/20/smaps_rollup").chmod(0)
    pids, reports = sample_as_nobody(nobody_tree)
    assert pids == [[10, 14, 12], []]  # PSS is read on the first tick of three
    assert reports == []


def test_an_own_process_the_kernel_refuses_is_said_once_as_a_warning(nobody_tree):
    (nobody_tree / "proc/20/smaps_rollup").chmod(0)
    pids, reports = sample_as_nobody(nobody_tree)
    assert pids == [[10, 14, 12], []]  # PSS is read on the first tick of three
    assert reports == [
        {
            "at": "warn",
            "event": "pss_unreadable",
            "pid": 20,
            "comm": "sidekiq 7.2.0 a",
            "path": str(nobody_tree / "proc/20/smaps_rollup"),
        }
    ]


def test_pss_is_read_every_third_tick_and_the_figures_are_kept_in_between(tmp_path):
    root = prefork_copy(tmp_path)
    sampler, reports = sampler_on(root)
    first = sampler.sample(0)
    stat = root / "cgroup/memory/dyno/memory.stat"
    stat.write_text(stat.read_text().replace(f"rss {600 * MB}", f"rss {700 * MB}"))
    # A worker's PSS changes; the next two ticks do not read it.
    (root / "proc/12/smaps_rollup").write_bytes(rollup(120000, 90000, 500, 30500))
    second, third, fourth = sampler.sample(1), sampler.sample(2), sampler.sample(3)
    assert [bool(s.top_pss) for s in (first, second, third, fourth)] == [True, False, False, True]
    for kept in (second, third):
        assert (kept.workers.worker_pss, kept.workers.worker_uss, kept.workers.parent_pss) == (
            first.workers.worker_pss,
            first.workers.worker_uss,
            first.workers.parent_pss,
        )
        # fits follows the memory of every tick: 100 MB less room is 3 workers fewer.
        assert kept.workers.fits == first.workers.fits - 3
    assert fourth.workers.worker_pss == (48000 + 90000 + 47800 + 48400) * KB // 4
    assert reports == []


def test_a_new_worker_gets_the_group_measured_at_once(tmp_path):
    root = prefork_copy(tmp_path)
    sampler, _ = sampler_on(root)
    sampler.sample(0)
    shutil.copytree(root / "proc/14", root / "proc/16")
    stat = root / "proc/16/stat"
    stat.write_text(stat.read_text().replace("14 (", "16 (", 1))
    (root / "proc/16/smaps_rollup").write_bytes(rollup(120000, 60000, 500, 40000))
    second = sampler.sample(1)
    assert second.workers.workers == 5
    assert second.top_pss  # read now, not two ticks later
    assert second.workers.worker_uss == (500 + 40000) * KB
