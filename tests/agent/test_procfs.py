"""The /proc scan: stat parsing, culprits, limits, and races with exiting processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat import procfs
from dynostat.procfs import MalformedError
from dynostat.sample import Culprit
from support.listing import Listing
from support.paths import FIXTURES

# A real line from this kind of machine (pid 1 of the captured host).
REAL_LINE = (
    b"1 (process_api) S 0 0 0 0 -1 4194560 67786 392165 0 148 65 339 577 472 10 -10 13 0 26 "
    b"47943680 4062 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 "
    b"0 0 0 0\n"
)


class Recorder:
    """Collects what the scan hands to the error policy."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, type, str]] = []

    def __call__(self, path: str, error: BaseException, kind: str) -> None:
        self.calls.append((path, type(error), kind))


def parse(data: bytes) -> SimpleNamespace:
    """A stat line as the scan reads it, with its fields named for the assertions."""
    pid, ppid, comm, state, threads, rss_pages = procfs.parse_stat_row(data)
    return SimpleNamespace(
        pid=pid,
        ppid=ppid,
        comm=procfs.decode_comm(comm),
        state=state.decode("ascii"),
        threads=threads,
        rss_pages=rss_pages,
    )


def test_a_real_stat_line_gives_pid_ppid_comm_state_threads_and_rss_in_pages():
    process = parse(REAL_LINE)
    assert vars(process) == {
        "pid": 1, "ppid": 0, "comm": "process_api", "state": "S", "threads": 13, "rss_pages": 4062
    }  # fmt: skip


def test_comm_with_spaces_and_parentheses_is_read_up_to_the_last_parenthesis():
    data = (FIXTURES / "comm-with-parens/proc/584/stat").read_bytes()
    process = parse(data)
    assert process.comm == "((a b ) ( c d) )"
    assert (process.pid, process.ppid, process.state, process.threads) == (584, 1, "R", 3)
    assert process.rss_pages == 2048


def test_comm_that_mimics_the_following_fields_does_not_shift_them():
    data = (FIXTURES / "comm-with-parens/proc/585/stat").read_bytes()
    process = parse(data)
    assert process.comm == ") Z 1 2 3 ("
    assert (process.state, process.ppid, process.threads) == ("S", 584, 1)


def test_comm_bytes_that_are_not_utf8_are_replaced_not_fatal():
    line = REAL_LINE.replace(b"process_api", b"ab\xff\xfecd")
    assert parse(line).comm == "ab\ufffd\ufffdcd"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"1 process_api S 0",
        b"(x) S 1 2",
        b"1 (x) S 0 0 0",
        b"1 (x) SZ " + b"0 " * 30,
        b"abc (x) S " + b"0 " * 30,
        REAL_LINE.replace(b" 13 0 26 ", b" thirteen 0 26 "),
    ],
)
def test_malformed_stat_lines_raise_malformed_error_naming_the_text(data):
    with pytest.raises(MalformedError) as raised:
        procfs.parse_stat_row(data)
    assert repr(data[:10])[2:-1] in str(raised.value)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_either_parse_or_raise_malformed_error(data):
    try:
        row = procfs.parse_stat_row(data)
    except MalformedError:
        return
    assert len(row) == 6
    assert len(row[procfs.ROW_STATE]) == 1


@given(
    comm=st.binary(max_size=64).filter(lambda b: b"\n" not in b),
    pid=st.integers(1, 2**22),
    threads=st.integers(1, 10**5),
)
def test_any_comm_bytes_round_trip_and_keep_the_fields_after_them(comm, pid, threads):
    line = REAL_LINE.replace(b"1 (process_api)", b"%d (%s)" % (pid, comm)).replace(
        b" 13 0 26 ", b" %d 0 26 " % threads
    )
    process = parse(line)
    assert (process.pid, process.threads, process.state) == (pid, threads, "S")
    assert process.comm == comm.decode("utf-8", "replace")


def row(pid: int, ppid: int, comm: str, threads: int, rss: int) -> tuple:
    return (pid, ppid, comm.encode(), b"S", threads, rss)


def test_a_ranking_keeps_the_largest_counts_largest_first_and_ties_to_the_first_offered():
    ranking = procfs.Ranking(2, minimum=2)
    threshold = ranking.threshold()
    assert threshold == 2
    for pid, threads in ((5, 3), (6, 9), (7, 3), (8, 1), (9, 4)):
        if threads >= threshold:
            threshold = ranking.offer(threads, row(pid, 1, f"p{pid}", threads, 0))
    assert ranking.culprits() == [Culprit(6, "p6", 9), Culprit(9, "p9", 4)]
    assert threshold == 5  # only a count above the smallest kept one can still get in
    tied = procfs.Ranking(1, minimum=1)
    tied.offer(7, row(10, 1, "first", 7, 0))
    tied.offer(7, row(11, 1, "second", 7, 0))
    assert tied.culprits() == [Culprit(10, "first", 7)]


def test_a_ranking_of_size_zero_takes_nothing_and_scale_gives_bytes():
    assert procfs.Ranking(0, minimum=1).threshold() == float("inf")
    ranking = procfs.Ranking(3, minimum=1)
    ranking.offer(10, row(1, 0, "a", 1, 10))
    assert ranking.culprits(scale=4096) == [Culprit(1, "a", 40960)]


def test_culprits_from_a_scan_leave_out_single_threaded_and_memoryless_processes():
    table = procfs.scan_processes(str(FIXTURES / "cgroup-v1/proc"), Recorder(), top=5)
    assert table.most_threads.culprits() == [
        Culprit(10, "puma 6.4.2 (tcp", 40),
        Culprit(11, "ruby", 7),
    ]
    assert table.most_rss.culprits(scale=4096) == [
        Culprit(10, "puma 6.4.2 (tcp", 51200 * 4096),
        Culprit(11, "ruby", 25600 * 4096),
        Culprit(1, "bash", 900 * 4096),
    ]
    assert table.zombie_counts == {11: 3, 10: 1}


def test_zombie_parents_are_ranked_by_zombie_count_and_named_from_their_own_stat():
    proc = str(FIXTURES / "cgroup-v1/proc")
    recorder = Recorder()
    assert procfs.zombie_parents(proc, {10: 1, 11: 3, 0: 2}, 3, recorder) == [
        Culprit(11, "ruby", 3),
        Culprit(0, "?", 2),  # outside the pid namespace: no stat to name it
        Culprit(10, "puma 6.4.2 (tcp", 1),
    ]
    assert procfs.zombie_parents(proc, {10: 1, 11: 3}, 1, recorder) == [Culprit(11, "ruby", 3)]
    assert procfs.zombie_parents(proc, {}, 3, recorder) == []
    assert recorder.calls == [(proc + "/0/stat", FileNotFoundError, procfs.PID_STAT)]


def test_scanning_a_fixture_counts_processes_threads_including_zombies():
    recorder = Recorder()
    table = procfs.scan_processes(str(FIXTURES / "cgroup-v1/proc"), recorder, top=10)
    assert (table.processes, table.threads, table.zombies) == (7, 1 + 40 + 7 + 4, 4)
    assert table.zombie_counts == {11: 3, 10: 1}
    # Every process with memory is ranked by rss; the four zombies have none.
    assert sorted(c.pid for c in table.most_rss.culprits()) == [1, 10, 11]
    assert recorder.calls == []


def test_empty_and_garbage_stat_files_go_to_the_error_policy_and_the_rest_is_counted():
    for scenario in ("empty-files", "garbage-files"):
        recorder = Recorder()
        table = procfs.scan_processes(str(FIXTURES / scenario / "proc"), recorder)
        assert table.processes == 1
        assert [c.comm for c in table.most_threads.culprits()] == ["survivor"]
        assert sorted((Path(p).parent.name, e, k) for p, e, k in recorder.calls) == [
            ("7", MalformedError, "pid_stat"),
            ("8", MalformedError, "pid_stat"),
        ]


def test_a_pid_listed_but_gone_before_it_is_read_reaches_the_policy_as_vanished(
    tmp_path, monkeypatch
):
    """Simulated with a fixture copy: the directory is deleted right after the listing."""
    root = tmp_path / "proc"
    shutil.copytree(FIXTURES / "cgroup-v1/proc", root)

    def list_then_exit(path):
        names = os.listdir(path)
        for file in (root / "11").iterdir():  # not rmtree: it would call the patched scandir
            file.unlink()
        (root / "11").rmdir()
        return Listing(names)

    monkeypatch.setattr(os, "scandir", list_then_exit)
    recorder = Recorder()
    table = procfs.scan_processes(str(root), recorder)
    assert table.processes == 6
    assert recorder.calls == [(str(root / "11/stat"), FileNotFoundError, "pid_stat")]
    assert procfs.is_vanished(FileNotFoundError())


def start_child() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_real_process_reaped_between_listing_and_open_is_vanished(monkeypatch):
    """The real kernel race: the pid is listed, then exits and is reaped before its open."""
    child = start_child()

    def list_then_reap(path):
        names = os.listdir(path)
        assert b"%d" % child.pid in names
        child.kill()
        child.wait()
        return Listing([b"%d" % child.pid, b"%d" % os.getpid()])

    monkeypatch.setattr(os, "scandir", list_then_reap)
    recorder = Recorder()
    table = procfs.scan_processes("/proc", recorder)
    assert table.processes == 1
    assert [c.pid for c in table.most_rss.culprits()] == [os.getpid()]
    assert len(recorder.calls) == 1
    path, error_type, _ = recorder.calls[0]
    assert path == f"/proc/{child.pid}/stat"
    assert issubclass(error_type, (FileNotFoundError, ProcessLookupError))


def test_a_real_process_reaped_between_open_and_read_is_vanished(monkeypatch):
    """The kernel answers ESRCH to reading a stat file whose process is gone."""
    child = start_child()
    real_read = os.read

    def read_after_reap(fd, size):
        if child.returncode is None:
            child.kill()
            child.wait()
        return real_read(fd, size)

    monkeypatch.setattr(os, "scandir", lambda path: Listing([b"%d" % child.pid]))
    monkeypatch.setattr(os, "read", read_after_reap)
    recorder = Recorder()
    table = procfs.scan_processes("/proc", recorder)
    assert table.processes == 0
    assert [error for _, error, _ in recorder.calls] == [ProcessLookupError]
    assert procfs.is_vanished(ProcessLookupError())


def test_the_scan_never_opens_cmdline_or_environ(monkeypatch):
    opened = []
    real_open = os.open

    def recording_open(path, *args, **kwargs):
        opened.append(os.fsdecode(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    table = procfs.scan_processes("/proc", Recorder())
    assert table.processes > 1
    # The directory itself, then each pid's stat relative to it.
    assert opened[0] == "/proc"
    assert opened[1:] and all(path.endswith("/stat") for path in opened[1:])


def test_the_scan_of_this_machine_sees_this_process_with_its_threads():
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)  # so this process ranks among the threaded
    helper.start()
    try:
        table = procfs.scan_processes("/proc", Recorder(), top=100_000)
        threads = len(os.listdir(f"/proc/{os.getpid()}/task"))
    finally:
        stop.set()
        helper.join()
    mine = [c for c in table.most_threads.culprits() if c.pid == os.getpid()]
    assert [c.count for c in mine] == [threads]
    assert table.processes >= len(table.most_rss.culprits()) >= 1


def test_a_zombie_shows_one_thread_like_the_pids_cgroup_counts_it():
    """Checked on this kernel: a zombie keeps its pid (so pids.current counts it) and
    num_threads reads 1, so summing num_threads counts it once, as the dyno limit does."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        row = procfs.parse_stat_row(Path(f"/proc/{child.pid}/stat").read_bytes())
        assert row[procfs.ROW_STATE] == b"Z"
        assert row[procfs.ROW_THREADS] == 1
    finally:
        child.wait()


LIMITS = (FIXTURES / "captured-host/proc/self/limits").read_bytes()


def test_max_processes_is_the_soft_limit_from_self_limits():
    assert procfs.parse_max_processes(LIMITS) == 96365
    assert (
        procfs.parse_max_processes(
            b"Limit  Soft Limit  Hard Limit  Units\nMax processes  256  512  processes\n"
        )
        == 256
    )


def test_unlimited_max_processes_means_no_limit():
    unlimited = (FIXTURES / "comm-with-parens/proc/self/limits").read_bytes()
    assert procfs.parse_max_processes(unlimited) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Max open files 1024 1024 files\n",
        b"Max processes  lots  lots\n",
        b"Max processes\n",
        b"Max processes -5 -5 processes\n",
    ],
)
def test_self_limits_without_a_usable_max_processes_line_is_malformed(data):
    with pytest.raises(MalformedError):
        procfs.parse_max_processes(data)


@given(st.binary(max_size=400))
def test_arbitrary_limits_bytes_parse_or_raise_malformed_error(data):
    try:
        limit = procfs.parse_max_processes(data)
    except MalformedError:
        return
    assert limit is None or limit >= 0


def test_this_machines_limit_matches_the_resource_module():
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    expected = None if soft == resource.RLIM_INFINITY else soft
    data = Path("/proc/self/limits").read_bytes()
    assert procfs.parse_max_processes(data) == expected


def test_the_scan_finds_the_worker_group_with_the_most_rss_lowest_pids_first():
    table = procfs.scan_processes(str(FIXTURES / "prefork/proc"), Recorder())
    group = table.group
    # puma's four workers (30000 pages each) over the two sleeps under bash (200 each); the
    # zombie child of puma has another comm and no memory, and works for nobody.
    assert (group.ppid, group.comm, group.members) == (10, b"puma: cluster w", [11, 12, 13, 14])


def test_the_largest_group_is_the_one_with_most_rss_not_most_workers(tmp_path):
    root = tmp_path / "proc"
    # Three small workers under 7 (100 pages each), two large ones under 8 (30000 each).
    for pid, ppid, comm, pages in [
        (20, 7, b"small", 100),
        (21, 7, b"small", 100),
        (22, 7, b"small", 100),
        (30, 8, b"large", 30000),
        (31, 8, b"large", 30000),
    ]:
        (root / str(pid)).mkdir(parents=True)
        line = REAL_LINE.replace(b"1 (process_api) S 0 ", b"%d (%s) S %d " % (pid, comm, ppid))
        (root / str(pid) / "stat").write_bytes(line.replace(b" 4062 ", b" %d " % pages))
    group = procfs.scan_processes(str(root), Recorder()).group
    assert (group.ppid, group.comm, group.count, group.members) == (8, b"large", 2, [30, 31])


def test_processes_whose_parent_is_outside_the_namespace_are_no_group(tmp_path):
    """ppid 0: processes entered into the pid namespace from outside (nsenter, docker exec)
    have no parent in it, which is no parent they share."""
    root = tmp_path / "proc"
    for pid in (7, 8, 9):
        (root / str(pid)).mkdir(parents=True)
        line = REAL_LINE.replace(b"1 (process_api) S 0 ", b"%d (bash) S 0 " % pid)
        (root / str(pid) / "stat").write_bytes(line)
    table = procfs.scan_processes(str(root), Recorder())
    assert table.processes == 3
    assert table.group is None


def test_a_group_of_hundreds_is_counted_whole_and_keeps_its_64_lowest_pids(tmp_path):
    root = tmp_path / "proc"
    root.mkdir()
    # Written in a shuffled order: a copied tree lists its directories in any order.
    for pid in [*range(300, 100, -2), *range(101, 301, 2)]:
        (root / str(pid)).mkdir()
        line = REAL_LINE.replace(b"1 (process_api) S 0 ", b"%d (celery) S 7 " % pid)
        (root / str(pid) / "stat").write_bytes(line)
    table = procfs.scan_processes(str(root), Recorder())
    group = table.group
    assert (group.ppid, group.comm, group.count) == (7, b"celery", 200)
    assert group.members == list(range(101, 101 + procfs.MAX_MEMBERS))
