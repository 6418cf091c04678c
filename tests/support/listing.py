"""A stand-in for ``os.scandir`` with a listing taken earlier: the first half of a race in
which a process exits between being listed and being read."""

from __future__ import annotations

from types import SimpleNamespace


class Listing:
    """What ``os.scandir(path)`` returns, for the names given (a context manager)."""

    def __init__(self, names: list) -> None:
        self.entries = [SimpleNamespace(name=name) for name in names]

    def __enter__(self):
        return iter(self.entries)

    def __exit__(self, *exc_info):
        return False
