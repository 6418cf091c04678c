"""The agent's stdout as a test sees it: a real file descriptor, read back as bytes."""

from __future__ import annotations

import os
import tempfile


class CapturedOutput:
    """A temporary file the agent writes its lines to through a real file descriptor.

    A regular file never blocks, so tests of what is printed get exact bytes without a reader.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self.fd = self._file.fileno()

    def getvalue(self) -> bytes:
        return os.pread(self.fd, os.fstat(self.fd).st_size, 0)

    def lines(self) -> list[str]:
        return self.getvalue().decode("utf-8").splitlines()

    def close(self) -> None:
        self._file.close()
