#!/usr/bin/env python3
"""Builds a stand-in for a python-build-standalone install_only archive, for the build tests.

Usage: standalone_archive.py ARCHIVE [RELEASE]   (writes ARCHIVE and prints its sha256)

Its python/bin/python3 runs this machine's /usr/bin/python3, so the archive is small and its
interpreter starts wherever the tests run. Beside it sit the parts a build must prune (tests,
GUI toolkits, headers, a static library, man pages, extra tools, pip) and parts it must keep.
The bats tests of bin/compile and the CNB tests of bin/build both build theirs here. The
archive is the same byte for byte every time, so its sha256 is too; stand-ins of two
different RELEASE names differ, as two real releases would.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"

# Under python/: what the agent's build must prune away.
PRUNED = (
    "bin/idle3",
    "bin/pydoc3",
    "bin/python3-config",
    "bin/pip3",
    "include/python3.11/Python.h",
    "share/man/man1/python3.1",
    "lib/pkgconfig/python3.pc",
    "lib/libpython3.11.a",
    "lib/python3.11/test/test_os.py",
    "lib/python3.11/idlelib/idle.py",
    "lib/python3.11/tkinter/__init__.py",
    "lib/python3.11/ensurepip/__init__.py",
    "lib/python3.11/lib-dynload/_tkinter.so",
    "lib/python3.11/lib-dynload/_testcapi.so",
    "lib/python3.11/config-3.11-x86_64-linux-gnu/Makefile",
    "lib/python3.11/site-packages/pip/__init__.py",
    "lib/python3.11/site-packages/pip-24.0.dist-info/METADATA",
)
# Under python/: what the agent needs and the build keeps, besides the interpreter.
KEPT = (
    "lib/python3.11/json/__init__.py",
    "lib/python3.11/lib-dynload/_ssl.so",
)


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", mode: int = 0o644) -> None:
    member = tarfile.TarInfo(f"python/{name}")
    member.size = len(data)
    member.mode = mode
    tar.addfile(member, io.BytesIO(data))


def build(archive: Path, release: str = "stand-in") -> str:
    """Writes the archive of RELEASE at ARCHIVE and returns its sha256."""
    interpreter = f'#!/bin/sh\n# {release}\nexec {SYSTEM_PYTHON} "$@"\n'
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _add(tar, "bin/python3.11", interpreter.encode(), 0o755)
        link = tarfile.TarInfo("python/bin/python3")
        link.type = tarfile.SYMTYPE
        link.linkname = "python3.11"
        link.mode = 0o777
        tar.addfile(link)
        for name in PRUNED + KEPT:
            _add(tar, name, f"{name}\n".encode())
    # mtime=0 keeps the gzip header, and so the sha256, the same from build to build.
    archive.write_bytes(gzip.compress(tarred.getvalue(), mtime=0))
    return hashlib.sha256(archive.read_bytes()).hexdigest()


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), *sys.argv[2:3]))
