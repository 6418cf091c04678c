"""Opening the logs: files, ``-`` for stdin, gzip read as is; lines and Logplex frames.

A drain's archive may hold HTTPS drain bodies as they arrived: octet-counted frames
(``83 <190>1 2026-... host app web.1 - message``), where the count is the length in bytes of
the frame after the space, its newline included. Frames are split by their counts, so two
frames written on one line without a newline between them still come out as two. A count
that does not fit the line (a message with an embedded newline, a cut file) leaves the line
as it is: the envelope reader then takes what it can and the rest is counted as skipped.
"""

from __future__ import annotations

import gzip
import io
import re
import sys
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

# Logplex lines are at most 10000 bytes; anything far longer is not a log line (a binary
# file, a minified blob) and is skipped without holding it in memory whole.
MAX_LINE_BYTES = 65536

_GZIP_MAGIC = b"\x1f\x8b"
_OCTET_COUNT = re.compile(rb"(\d{1,6}) <")


class InputError(Exception):
    """A named input cannot be opened at all (missing, a directory, unreadable)."""


class Source:
    """One input: its name for messages, and its binary stream (gzip already unwrapped)."""

    def __init__(self, name: str, stream: BinaryIO) -> None:
        self.name = name
        self.stream = stream
        self.overlong_lines = 0
        self.truncated: str | None = None

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()


def open_source(name: str) -> Source:
    """Opens a file (or stdin for ``-``), unwrapping gzip when its first bytes say so."""
    if name == "-":
        raw: BinaryIO = sys.stdin.buffer
    else:
        try:
            raw = open(name, "rb")  # closed by Source.close
        except OSError as exc:
            raise InputError(f"{name}: {exc.strerror or exc}") from exc
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return Source(name, gzip.GzipFile(fileobj=buffered, mode="rb"))  # type: ignore[arg-type]
    return Source(name, buffered)


def raw_lines(source: Source) -> Iterator[bytes]:
    """The input's lines as bytes, without newlines, over-long lines counted and left out.

    A gzip stream that is cut or corrupt ends the input where it breaks; what came before
    is kept and ``source.truncated`` says why it ended.
    """
    readline = source.stream.readline
    while True:
        try:
            chunk = readline(MAX_LINE_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            source.truncated = str(exc) or type(exc).__name__
            return
        if not chunk:
            return
        if len(chunk) == MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            source.overlong_lines += 1
            if not _skip_rest_of_line(source):
                return
            continue
        yield chunk.rstrip(b"\r\n")


def _skip_rest_of_line(source: Source) -> bool:
    """Reads past the end of an over-long line; False when the input ended or broke."""
    while True:
        try:
            chunk = source.stream.readline(MAX_LINE_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            source.truncated = str(exc) or type(exc).__name__
            return False
        if not chunk:
            return False
        if chunk.endswith(b"\n"):
            return True


def frames(line: bytes) -> list[bytes]:
    """A line split into Logplex frames when it starts with an octet count, else itself."""
    match = _OCTET_COUNT.match(line)
    if match is None:
        return [line]
    found = []
    while match is not None:
        start = match.end() - 1  # the frame starts at its "<"
        length = int(match.group(1))
        end = start + length
        if end >= len(line):
            # The count includes the frame's newline, which the line reader removed.
            found.append(line[start:])
            break
        frame = line[start:end]
        rest = line[end:]
        match = _OCTET_COUNT.match(rest)
        if match is None:
            # The count does not end where another frame begins: trust the line, not it.
            found.append(line[start:])
            break
        found.append(frame.rstrip(b"\r\n"))
        line = rest
    return found
