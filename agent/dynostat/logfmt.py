"""logfmt: ``key=value`` pairs separated by spaces, the shape Heroku's log tools parse.

A value is written bare when it is plain, and double-quoted otherwise: when it is empty or
holds a space, ``=``, ``"``, a backslash or anything unprintable. Inside quotes ``"`` and
``\\`` are backslash-escaped and unprintable characters become ``\\n``, ``\\t``, ``\\xNN`` or
``\\uNNNN``, so a hostile process name can never split a log line or forge a field.
"""

from __future__ import annotations

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read it
if TYPE_CHECKING:
    from collections.abc import Mapping


# Every line the agent prints, newline included, fits in PIPE_BUF (4096 bytes): one write of
# that size is atomic on a pipe, so the app's own output can never tear it (see logwriter).
# That is also far below the 10000 bytes past which Logplex splits a line.
MAX_LINE_BYTES = 4096

# A free-text value (an error message, a path) is cut to this many characters: it is there to
# be read by a person, and cutting it keeps every event line far below MAX_LINE_BYTES.
MAX_TEXT_CHARS = 200

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def needs_quotes(value: str) -> bool:
    """Whether a value must be quoted to survive a logfmt parser unchanged."""
    if not value:
        return True
    return any(char in ' ="\\' or not char.isprintable() for char in value)


def escape_char(char: str) -> str:
    """One character as it is written inside a quoted value."""
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(value: str) -> str:
    """A value as it appears after ``key=``: bare when plain, else quoted and escaped."""
    if not needs_quotes(value):
        return value
    return '"' + "".join(escape_char(char) for char in value) + '"'


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Free text cut to ``limit`` characters, marked with ``...`` when it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def render(value: object) -> str:
    """A field value as text: numbers as Python prints them, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def pair(key: str, value: object) -> str:
    """One ``key=value`` pair with the value quoted as needed."""
    return f"{key}={quote(render(value))}"


def line(fields: Mapping[str, object]) -> str:
    """A whole logfmt line (without the newline) from ordered fields."""
    return " ".join(pair(key, value) for key, value in fields.items())
