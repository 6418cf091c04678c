"""What the agent would print for the reports a source or sink makes, without printing it."""

from __future__ import annotations

from dynostat.loop import Reporter
from dynostat.output import Formatter


class Reports(list):
    """The agent's own Reporter (its rate limiting included) collecting each line's fields.

    Each report the Reporter lets through is appended as a dict; ``now`` is the monotonic
    time the rate limiter sees, which a test may move on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        reports = self

        class Collecting(Reporter):
            def emit(self, fields):
                reports.append(dict(fields))

        self.reporter = Collecting(Formatter("web.1", "d-1"), writer=None, clock=lambda: self.now)

    def __call__(self, fields, key=None, every=None) -> None:
        self.reporter(fields, key=key, every=every)
