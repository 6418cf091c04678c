"""The /proc scan: stat parsing, culprits, limits, and races with exiting processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat import procfs
from dynostat.procfs import MalformedError
from dynostat.sample import Culprit, Process

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

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


def test_a_real_stat_line_gives_pid_ppid_comm_state_threads_and_rss_in_bytes():
    process = procfs.parse_stat(REAL_LINE, page_size=4096)
    assert process == Process(
        pid=1, ppid=0, comm="process_api", state="S", threads=13, rss_bytes=4062 * 4096
    )


def test_comm_with_spaces_and_parentheses_is_read_up_to_the_last_parenthesis():
    data = (FIXTURES / "comm-with-parens/proc/584/stat").read_bytes()
    process = procfs.parse_stat(data, page_size=4096)
    assert process.comm == "((a b ) ( c d) )"
    assert (process.pid, process.ppid, process.state, process.threads) == (584, 1, "R", 3)
    assert process.rss_bytes == 2048 * 4096


def test_comm_that_mimics_the_following_fields_does_not_shift_them():
    data = (FIXTURES / "comm-with-parens/proc/585/stat").read_bytes()
    process = procfs.parse_stat(data)
    assert process.comm == ") Z 1 2 3 ("
    assert (process.state, process.ppid, process.threads) == ("S", 584, 1)


def test_comm_bytes_that_are_not_utf8_are_replaced_not_fatal():
    line = REAL_LINE.replace(b"process_api", b"ab\xff\xfecd")
    assert procfs.parse_stat(line).comm == "ab\ufffd\ufffdcd"


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
        procfs.parse_stat(data)
    assert repr(data[:10])[2:-1] in str(raised.value)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_either_parse_or_raise_malformed_error(data):
    try:
        process = procfs.parse_stat(data)
    except MalformedError:
        return
    assert isinstance(process, Process)
    assert len(process.state) == 1


@given(
    comm=st.binary(max_size=64).filter(lambda b: b"\n" not in b),
    pid=st.integers(1, 2**22),
    threads=st.integers(1, 10**5),
)
def test_any_comm_bytes_round_trip_and_keep_the_fields_after_them(comm, pid, threads):
    line = REAL_LINE.replace(b"1 (process_api)", b"%d (%s)" % (pid, comm)).replace(
        b" 13 0 26 ", b" %d 0 26 " % threads
    )
    process = procfs.parse_stat(line)
    assert (process.pid, process.threads, process.state) == (pid, threads, "S")
    assert process.comm == comm.decode("utf-8", "replace")


def rows_of(*processes: tuple) -> list:
    return [
        (pid, ppid, comm.encode(), state.encode(), threads, rss)
        for pid, ppid, comm, state, threads, rss in processes
    ]


ROWS = rows_of(
    (1, 0, "bash", "S", 1, 900),
    (10, 1, "puma", "S", 40, 51200),
    (11, 10, "ruby", "S", 7, 25600),
    (20, 11, "convert", "Z", 1, 0),
    (21, 11, "convert", "Z", 1, 0),
    (23, 10, "sh", "Z", 1, 0),
    (30, 999, "gone", "Z", 1, 0),
)


def test_zombie_parents_are_ranked_by_zombie_count_and_named_by_the_parents_comm():
    assert procfs.zombie_parents(ROWS, 3) == [
        Culprit(11, "ruby", 2),
        Culprit(10, "puma", 1),
        Culprit(999, "?", 1),
    ]
    assert procfs.zombie_parents(ROWS, 1) == [Culprit(11, "ruby", 2)]
    assert procfs.zombie_parents(rows_of((1, 0, "init", "S", 1, 1)), 3) == []


def test_top_threads_leave_out_single_threaded_processes():
    assert procfs.top_threads(ROWS, 3) == [Culprit(10, "puma", 40), Culprit(11, "ruby", 7)]


def test_top_rss_is_in_bytes_and_leaves_out_processes_without_memory():
    assert procfs.top_rss(ROWS, 5, page_size=4096) == [
        Culprit(10, "puma", 51200 * 4096),
        Culprit(11, "ruby", 25600 * 4096),
        Culprit(1, "bash", 900 * 4096),
    ]


def test_scanning_a_fixture_counts_processes_threads_including_zombies():
    recorder = Recorder()
    table = procfs.scan_processes(str(FIXTURES / "cgroup-v1/proc"), recorder)
    assert (table.processes, table.threads, table.zombies) == (7, 1 + 40 + 7 + 4, 4)
    assert sorted(row[procfs.ROW_PID] for row in table.rows) == [1, 10, 11, 20, 21, 22, 23]
    assert recorder.calls == []


def test_empty_and_garbage_stat_files_go_to_the_error_policy_and_the_rest_is_counted():
    for scenario in ("empty-files", "garbage-files"):
        recorder = Recorder()
        table = procfs.scan_processes(str(FIXTURES / scenario / "proc"), recorder)
        assert [row[procfs.ROW_COMM] for row in table.rows] == [b"survivor"]
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
    real_listdir = os.listdir

    def listdir_then_exit(path):
        names = real_listdir(path)
        shutil.rmtree(root / "11")
        return names

    monkeypatch.setattr(os, "listdir", listdir_then_exit)
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
    real_listdir = os.listdir

    def listdir_then_reap(path):
        names = real_listdir(path)
        assert str(child.pid) in names
        child.kill()
        child.wait()
        return [str(child.pid), str(os.getpid())]

    monkeypatch.setattr(os, "listdir", listdir_then_reap)
    recorder = Recorder()
    table = procfs.scan_processes("/proc", recorder)
    assert [row[procfs.ROW_PID] for row in table.rows] == [os.getpid()]
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

    monkeypatch.setattr(os, "listdir", lambda path: [str(child.pid)])
    monkeypatch.setattr(os, "read", read_after_reap)
    recorder = Recorder()
    table = procfs.scan_processes("/proc", recorder)
    assert table.rows == []
    assert [error for _, error, _ in recorder.calls] == [ProcessLookupError]
    assert procfs.is_vanished(ProcessLookupError())


def test_the_scan_never_opens_cmdline_or_environ(monkeypatch):
    opened = []
    real_open = os.open

    def recording_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    table = procfs.scan_processes("/proc", Recorder())
    assert table.processes > 1
    assert opened and all(path.endswith("/stat") for path in opened)


def test_the_scan_of_this_machine_sees_this_process_with_its_threads():
    table = procfs.scan_processes("/proc", Recorder())
    mine = [row for row in table.rows if row[procfs.ROW_PID] == os.getpid()]
    assert len(mine) == 1
    assert mine[0][procfs.ROW_THREADS] == len(os.listdir(f"/proc/{os.getpid()}/task"))
    assert mine[0][procfs.ROW_STATE] in (b"R", b"S")


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
    assert procfs.read_max_processes("/proc") == expected
