"""``smaps_rollup`` text as the kernel writes it, for crafted /proc trees and parser tests."""

from __future__ import annotations

# The lines of Linux 6.x's smaps_rollup in their order, after the header line; the ones the
# agent reads are filled from the arguments, the others hold plausible values.
HEADER = b"55d4c0a3e000-7ffd1c9f4000 ---p 00000000 00:00 0                          [rollup]\n"


def rollup(rss_kb: int, pss_kb: int, private_clean_kb: int, private_dirty_kb: int) -> bytes:
    """A whole smaps_rollup file for a process with these figures (kB, as the kernel says)."""
    shared_clean = max(rss_kb - private_clean_kb - private_dirty_kb, 0)
    lines = [
        ("Rss", rss_kb),
        ("Pss", pss_kb),
        ("Pss_Dirty", private_dirty_kb),
        ("Pss_Anon", private_dirty_kb),
        ("Pss_File", max(pss_kb - private_dirty_kb, 0)),
        ("Pss_Shmem", 0),
        ("Shared_Clean", shared_clean),
        ("Shared_Dirty", 0),
        ("Private_Clean", private_clean_kb),
        ("Private_Dirty", private_dirty_kb),
        ("Referenced", rss_kb),
        ("Anonymous", private_dirty_kb),
        ("KSM", 0),
        ("LazyFree", 0),
        ("AnonHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0),
        ("Shared_Hugetlb", 0),
        ("Private_Hugetlb", 0),
        ("Swap", 0),
        ("SwapPss", 0),
        ("Locked", 0),
    ]
    return HEADER + b"".join(b"%-16s%8d kB\n" % (name.encode() + b":", kb) for name, kb in lines)
