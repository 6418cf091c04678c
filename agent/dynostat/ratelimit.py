"""The one rule for how often a line may repeat: once per key per period, or once ever.

Every line the agent may print more than once goes through a RateLimiter: warnings (per
event and culprit, once a minute), errors of a source file (once ever: ``ONCE``), push
failures (per reason, once a minute), the log's own backpressure report. What was held back
is counted, so the next line that goes through can say ``repeated=N``.

State is bounded: at most ``max_keys`` keys are kept; past that the expired ones go first,
then the oldest. A key that changes on every call cannot grow it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read it
if TYPE_CHECKING:
    from collections.abc import Hashable

WARN_EVERY_S = 60.0
ONCE = float("inf")


class RateLimiter:
    """Lets one thing through per key per period; see the module docstring."""

    def __init__(self, every: float = WARN_EVERY_S, max_keys: int = 256):
        self.every = every
        self.max_keys = max_keys
        # key -> [monotonic time it may go through again, how many were held back since]
        # A plain dict keeps insertion order, which is all the oldest-first pruning needs.
        self._entries: dict[Hashable, list[float]] = {}

    def due(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` would go through now, without counting or recording anything."""
        entry = self._entries.get(key)
        return entry is None or now >= entry[0]

    def allow(self, key: Hashable, now: float, every: float | None = None) -> tuple[bool, int]:
        """(whether to let this one through, how many of this key were held back before it).

        ``every`` is this key's period (the limiter's own when None; ``ONCE`` for never again).
        """
        entry = self._entries.get(key)
        if entry is not None and now < entry[0]:
            entry[1] += 1
            return False, 0
        held_back = int(entry[1]) if entry is not None else 0
        self._entries.pop(key, None)
        self._entries[key] = [now + (self.every if every is None else every), 0]
        if len(self._entries) > self.max_keys:
            self._prune(now)
        return True, held_back

    def _prune(self, now: float) -> None:
        for key in [key for key, entry in self._entries.items() if entry[0] <= now]:
            del self._entries[key]
        while len(self._entries) > self.max_keys:
            del self._entries[next(iter(self._entries))]
