"""Running a piece of a test as an unprivileged user, for real permission errors.

Root ignores mode bits, so a real EACCES needs a real unprivileged process: ``as_nobody``
forks, drops to the ``nobody`` user and group in the child, runs ``work`` there and hands its
result back as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

NOBODY = 65534


def as_nobody(work: Callable[[], object]) -> object:
    """``work()``'s result (anything JSON can carry), computed by ``nobody`` in a child."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(child, 0)
    return json.loads(b"".join(chunks))
