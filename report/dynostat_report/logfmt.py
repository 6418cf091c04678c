"""Reading logfmt messages: ``key=value`` pairs, quoted values, numbers with units, ``top#``.

The grammar is the one dynostat and Heroku's router and log-runtime-metrics write. A value is
bare, or double-quoted; a quoted value is a JSON string (only ``\\" \\\\ \\n \\r \\t
\\uXXXX`` escapes, surrogate pairs above U+FFFF). Older agents also wrote ``\\xNN`` and
``\\UXXXXXXXX`` inside quotes: those are read too, so old and new lines look the same here.

A ``top#<kind>`` value holds ``pid/comm:value`` entries separated by commas. A comm's own
``,`` and ``:`` are escaped (``\\u002c``, ``\\u003a``; older agents wrote ``\\x2c``), so an
entry list splits on ``,``, then on the first ``/`` and the last ``:``.
"""

from __future__ import annotations

import json
import math
import re

# A key, then a quoted value (a JSON string, possibly with escaped quotes) or a bare one.
# An unterminated quote falls through to the bare alternative, so a cut line still yields
# the pairs before the cut.
_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')

# Escapes read leniently: JSON's own, and the ``\xNN``/``\UXXXXXXXX`` older agents wrote.
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|U[0-9a-fA-F]{8}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "/": "/"}
_SIMPLE_ESCAPES.update({"b": "\b", "f": "\f"})

UNIT_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%/"

# Units that are sizes, as factors to MB (2**20 bytes, as log-runtime-metrics counts them).
TO_MB = {"MB": 1.0, "B": 1.0 / 1048576, "kB": 1.0 / 1024, "KB": 1.0 / 1024, "GB": 1024.0}
TO_MB["TB"] = 1024.0 * 1024.0


def raw_pairs(message: str) -> dict[str, str]:
    """The pairs of a message with quoted values left quoted: for a reader that needs few
    of many fields (a router line), so it unquotes only those."""
    return dict(_PAIR.findall(message))


def pairs(message: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of a logfmt message, values unquoted.

    Words without ``=`` are ignored, as every logfmt reader does.
    """
    if '"' not in message:
        found = []
        for word in message.split():
            key, equals, value = word.partition("=")
            if equals and key:
                found.append((key, value))
        return found
    return [
        (key, unquote(value) if value[:1] == '"' else value)
        for key, value in _PAIR.findall(message)
    ]


def unquote(value: str) -> str:
    """A quoted value's text: a JSON string, or (from older agents) its looser cousin."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        text = json.loads(value)
    except ValueError:
        return unescape(value[1:-1])
    return text if isinstance(text, str) else value


def _replace_escape(match: re.Match[str]) -> str:
    escape = match.group(1)
    head = escape[0]
    if head in "uxU" and len(escape) > 1:
        return chr(int(escape[1:], 16)) if int(escape[1:], 16) <= 0x10FFFF else match.group(0)
    return _SIMPLE_ESCAPES.get(escape, match.group(0))


def unescape(text: str) -> str:
    """Backslash escapes decoded; a surrogate pair becomes the character it encodes.

    An escape this grammar does not know is kept as written, so nothing is lost.
    """
    if "\\" not in text:
        return text
    decoded = _ESCAPE.sub(_replace_escape, text)
    if any("\ud800" <= char <= "\udfff" for char in decoded):
        # Join surrogate pairs written as two \uXXXX escapes; a lone one stays visible.
        decoded = decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return decoded


def number(value: str) -> tuple[float, str] | None:
    """``'211.52MB'`` as ``(211.52, 'MB')``, ``'87'`` as ``(87.0, '')``; None if not a number."""
    digits = value.rstrip(UNIT_LETTERS)
    if not digits:
        return None
    try:
        parsed = float(digits)
    except ValueError:
        return None
    if not math.isfinite(parsed):
        return None
    return parsed, value[len(digits) :]


def to_megabytes(value: float, unit: str) -> float | None:
    """A size in MB, or None when the unit is not a size unit."""
    factor = TO_MB.get(unit)
    return None if factor is None else value * factor


class TopEntry:
    """One ``pid/comm:value`` entry of a ``top#`` list."""

    __slots__ = ("comm", "pid", "unit", "value")

    def __init__(self, pid: int, comm: str, value: float, unit: str) -> None:
        self.pid = pid
        self.comm = comm
        self.value = value
        self.unit = unit

    def __repr__(self) -> str:
        return f"TopEntry({self.pid!r}, {self.comm!r}, {self.value!r}, {self.unit!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopEntry):
            return NotImplemented
        return (self.pid, self.comm, self.value, self.unit) == (
            other.pid,
            other.comm,
            other.value,
            other.unit,
        )

    def __hash__(self) -> int:
        return hash((self.pid, self.comm, self.value, self.unit))


def top_entries(value: str) -> list[TopEntry]:
    """The entries of a ``top#`` value (already unquoted); malformed entries are left out."""
    entries = []
    for entry in value.split(","):
        pid_text, slash, rest = entry.partition("/")
        comm, colon, amount = rest.rpartition(":")
        if not slash or not colon or not pid_text.isdigit():
            continue
        parsed = number(amount)
        if parsed is None:
            continue
        entries.append(TopEntry(int(pid_text), unescape(comm), parsed[0], parsed[1]))
    return entries
