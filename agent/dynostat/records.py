"""Small slotted records for the agent's values and settings.

Neither dataclasses nor namedtuple: importing ``dataclasses`` pulls in inspect, ast, dis and
tokenize (about 3.1 MB of RSS), and ``collections`` another 0.6 MB, in an agent whose whole
budget is 10 MB (CPython 3.11 with -S, as on dynos). ``typing`` costs 2.2 MB the same way,
which is why the agent's modules import it, and ``collections.abc``, only for type checkers.
"""

from __future__ import annotations

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read these
if TYPE_CHECKING:
    from collections.abc import Callable

    # The fields of one event line, in the order they are printed.
    Fields = dict[str, object]
    # report(fields, key=None, every=None): print an event line through the agent's one rate
    # limiter (see loop.Reporter); what every source, sink and the loop say things through.
    Report = Callable[..., None]

_REQUIRED = object()


class Record:
    """A slotted record: fields in ``__slots__`` order, keyword or positional, with defaults.

    ``_defaults`` maps a field to its default; a ``list`` default is copied per instance so no
    two records share one. Records compare by type and field values, like dataclasses.
    """

    __slots__ = ()
    _defaults: dict = {}  # noqa: RUF012 - a per-class constant, never mutated

    def __init__(self, *args, **kwargs):
        fields = self.__slots__
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(fields)} values")
        for name, value in zip(fields, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__} got {name} twice")
            kwargs[name] = value
        for name in fields:
            value = kwargs.pop(name, _REQUIRED)
            if value is _REQUIRED:
                default = self._defaults.get(name, _REQUIRED)
                if default is _REQUIRED:
                    raise TypeError(f"{type(self).__name__} needs {name}")
                value = list(default) if isinstance(default, list) else default
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no field {sorted(kwargs)[0]}")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def replace(self, **changes: object) -> Record:
        """A copy with the given fields changed."""
        values = dict(zip(self.__slots__, self._values()))
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # a mutable record is not hashable

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"


class Frozen(Record):
    """A record that cannot change after it is built, and so can be hashed."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __hash__(self) -> int:
        return hash(self._values())
