"""smaps_rollup: PSS and USS from captured files, from a real process, and from any bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat import smaps
from dynostat.procfs import MalformedError
from support.paths import FIXTURES
from support.smaps import rollup

SMAPS_FIXTURES = FIXTURES / "smaps_rollup"
KB = 1024


@pytest.mark.parametrize(
    ("name", "pss_kb", "uss_kb"),
    [
        ("linux-6.18-python3", 8172, 0 + 6868),
        ("linux-6.18-bash", 1560, None),
        ("linux-4.14-lines", 2600, 96 + 2504),
    ],
)
def test_captured_files_give_pss_and_private_clean_plus_dirty(name, pss_kb, uss_kb):
    data = (SMAPS_FIXTURES / name).read_bytes()
    lines = dict(line.split(b":", 1) for line in data.splitlines()[1:])
    if uss_kb is None:  # read off the captured file itself
        uss_kb = int(lines[b"Private_Clean"].split()[0]) + int(lines[b"Private_Dirty"].split()[0])
    assert smaps.parse_smaps_rollup(data) == (pss_kb * KB, uss_kb * KB)


def test_pss_is_not_taken_from_the_pss_dirty_or_swap_pss_lines():
    data = rollup(100, 40, 3, 7).replace(b"\nPss:", b"\nPss_Later:")
    with pytest.raises(MalformedError, match="no Pss: line"):
        smaps.parse_smaps_rollup(data)
    assert smaps.parse_smaps_rollup(rollup(100, 40, 3, 7)) == (40 * KB, 10 * KB)


def test_the_last_line_without_a_newline_still_parses():
    data = b"header\nPss: 5 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB"
    assert smaps.parse_smaps_rollup(data) == (5 * KB, 3 * KB)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"header only\n",
        rollup(10, 5, 1, 1).replace(b"\nPrivate_Dirty:", b"\nPrivate_Dirtier:"),
        rollup(10, 5, 1, 1).replace(b"5 kB\n", b"5 MB\n", 1),
        rollup(10, 5, 1, 1).replace(b"       5 kB", b"      -5 kB", 1),
        rollup(10, 5, 1, 1).replace(b"       5 kB", b"     5.0 kB", 1),
        rollup(10, 5, 1, 1).replace(b"       5 kB", b"       \xd9\xa3 kB", 1),
        b"h\nPss: " + b"9" * 5000 + b" kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 1 kB\n",
    ],
)
def test_anything_but_the_kernel_s_shape_raises_malformed_error(data):
    with pytest.raises(MalformedError):
        smaps.parse_smaps_rollup(data)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_either_parse_or_raise_malformed_error(data):
    try:
        pss, uss = smaps.parse_smaps_rollup(data)
    except MalformedError:
        return
    assert pss >= 0 and uss >= 0


@given(
    rss=st.integers(0, 2**40),
    pss=st.integers(0, 2**40),
    clean=st.integers(0, 2**40),
    dirty=st.integers(0, 2**40),
)
def test_any_figures_the_kernel_writes_read_back(rss, pss, clean, dirty):
    assert smaps.parse_smaps_rollup(rollup(rss, pss, clean, dirty)) == (
        pss * KB,
        (clean + dirty) * KB,
    )


def test_this_process_read_through_a_proc_descriptor_agrees_with_its_own_file():
    held = bytearray(b"\x01") * (8 * 1024 * 1024)  # 8 MB written: private and resident
    fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        pss, uss = smaps.parse_smaps_rollup(smaps.read_smaps_rollup(fd, os.getpid()))
    finally:
        os.close(fd)
    again = smaps.parse_smaps_rollup(Path("/proc/self/smaps_rollup").read_bytes())
    assert uss >= len(held)
    assert pss >= uss
    # Two reads moments apart of a process that is not changing: the same to within 1 MB.
    assert abs(again[0] - pss) < 1024 * 1024
    assert abs(again[1] - uss) < 1024 * 1024
