"""Writing lines to the dyno's log without ever holding up the loop or tearing a line.

The agent's stdout is the dyno's log pipe, shared with the app. Three things can go wrong
there, and none of them may cost more than the lines concerned:

- The reader stalls and the pipe fills up. A plain blocking write would then wait for as long
  as the reader does, so the schedule slips and a SIGTERM waits with it. Here every write
  first polls the descriptor and waits at most until the deadline the loop set (the next
  sample's); lines that cannot be written by then are dropped and counted.
- Another process on the same pipe made it non-blocking (Node does this to its stdio), so a
  write to a full pipe fails with EAGAIN at once. Here that is a wait, like the one above.
- Another writer's bytes interleave with ours. Each line is written whole by one ``write``
  of at most PIPE_BUF (4096) bytes, which POSIX makes atomic on a pipe, so lines are never
  torn or mixed even when the app writes at the same moment.

What could not be written is reported on the next line that gets through, at most once a
minute: ``at=warn event=log_backpressure dropped_lines=N skipped_samples=M`` (samples whose
deadline passed while the loop was busy count too). A closed pipe (EPIPE) or a closed fd 1
ends the agent quietly: nobody is reading.
"""

from __future__ import annotations

import errno
import os
import select
import time

from dynostat.ratelimit import WARN_EVERY_S, RateLimiter

# POSIX guarantees a write of at most PIPE_BUF bytes to a pipe is atomic; Linux's is 4096.
PIPE_BUF = 4096
# How long the last lines after a stop request may wait for a stalled reader: well inside the
# second the agent promises to be gone in.
FINAL_WAIT_S = 0.5
# Lines written outside the loop's schedule (start-up errors) wait at most this long.
DEFAULT_WAIT_S = 1.0
# A wait on a stalled reader looks for a stop request this often.
POLL_SLICE_MS = 50

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read these
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


class OutputClosed(BaseException):
    """Stdout is gone (the reader closed the pipe, or fd 1 was closed): nobody can read us.

    A BaseException, so that no ``except Exception`` guard in a source or sink can swallow
    it and keep the agent sampling for nobody: it always ends the agent, quietly, exit 0.
    """


class LineWriter:
    """Writes lines to ``fd`` as described in the module docstring.

    ``deadline`` is the monotonic time no write may wait past; the loop sets it to the next
    sample's deadline before each tick (None: ``DEFAULT_WAIT_S`` from the write). ``stop``
    has a ``requested`` flag set by the stop signals: after a stop request, lines wait at
    most ``FINAL_WAIT_S`` from the moment it was seen.
    """

    def __init__(
        self,
        fd: int,
        event_line: Callable[[Mapping[str, object]], str],
        *,
        clock: Callable[[], float] = time.monotonic,
        stop=None,
    ) -> None:
        self.fd = fd
        self.event_line = event_line
        self.clock = clock
        self.stop = stop
        self.deadline: float | None = None
        # Not yet reported: lines dropped, and samples the schedule skipped.
        self.dropped_lines = 0
        self.skipped_samples = 0
        self._limiter = RateLimiter(WARN_EVERY_S)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)
        self._stop_at: float | None = None

    def count_skipped(self, samples: int) -> None:
        """The schedule missed ``samples`` deadlines: say so with the next line written."""
        self.skipped_samples += samples

    def write(self, lines: Sequence[str]) -> int:
        """Write each line whole, in order; returns how many were written (the rest dropped)."""
        if not lines:
            return 0
        deadline = self._deadline()
        if self.dropped_lines or self.skipped_samples:
            self._report_backpressure(deadline)
        for index, line in enumerate(lines):
            if not self._write_line(line, deadline):
                self.dropped_lines += len(lines) - index
                return index
        return len(lines)

    def _deadline(self) -> float:
        final = self._final_deadline()
        if final is not None:
            # After a stop request only the last lines are left to write: they get a short
            # wait of their own, counted from the request, whatever the schedule said.
            return final
        if self.deadline is not None:
            return self.deadline
        return self.clock() + DEFAULT_WAIT_S

    def _final_deadline(self) -> float | None:
        """FINAL_WAIT_S after the stop request was first seen; None before any request."""
        if self.stop is None or not self.stop.requested:
            return None
        if self._stop_at is None:
            self._stop_at = self.clock()
        return self._stop_at + FINAL_WAIT_S

    def _report_backpressure(self, deadline: float) -> None:
        now = self.clock()
        if not self._limiter.due("log_backpressure", now):
            return
        line = self.event_line(
            {
                "at": "warn",
                "event": "log_backpressure",
                "dropped_lines": self.dropped_lines,
                "skipped_samples": self.skipped_samples,
            }
        )
        if self._write_line(line, deadline):
            self.dropped_lines = self.skipped_samples = 0
            self._limiter.allow("log_backpressure", now)

    def _write_line(self, line: str, deadline: float) -> bool:
        data = (line + "\n").encode("utf-8", "backslashreplace")
        if len(data) > PIPE_BUF:
            # The formatter keeps every line shorter; a longer one would be torn on a pipe.
            return False
        while True:
            if not self._wait_writable(deadline):
                return False
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                continue  # someone else filled the pipe between the poll and the write
            except BrokenPipeError as error:
                raise OutputClosed(str(error)) from None
            except OSError as error:
                if error.errno == errno.EBADF:  # fd 1 was closed under us
                    raise OutputClosed(str(error)) from None
                # A full disk behind a redirect, an I/O error: these lines are lost, and
                # the next line that gets through says how many.
                return False
            if written == len(data):
                return True
            # Only a regular file or a socket writes part of a line; finish it.
            data = data[written:]

    def _wait_writable(self, deadline: float) -> bool:
        """Whether ``fd`` takes a line before ``deadline``; False at the deadline.

        The wait is cut into slices so that a stop request, which a signal handler records,
        is seen within one slice; from then on the wait ends ``FINAL_WAIT_S`` after it.
        """
        while True:
            final = self._final_deadline()
            if final is not None:
                deadline = min(deadline, final)
            remaining = deadline - self.clock()
            timeout_ms = max(0, min(int(remaining * 1000 + 0.999), POLL_SLICE_MS))
            events = self._poll.poll(timeout_ms)
            if events:
                # POLLOUT, or an error the write itself will name (EPIPE, EBADF).
                return True
            if self.clock() >= deadline:
                return False
