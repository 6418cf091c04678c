"""logfmt: ``key=value`` pairs separated by spaces, the shape Heroku's log tools parse.

A value is written bare when it is plain, and double-quoted otherwise: when it is empty or
holds a space, ``=``, ``"``, a backslash or anything unprintable. A quoted value is exactly a
JSON string, so any logfmt or JSON parser reads it back unchanged: ``"`` and ``\\`` are
backslash-escaped, newline, carriage return and tab are ``\\n``, ``\\r`` and ``\\t``, and every
other unprintable character (controls, U+0085, U+2028 and U+2029, format characters) is
``\\uXXXX``, written as a surrogate pair above U+FFFF. Go's ``\\xNN`` and ``\\UNNNNNNNN`` are
never used: JSON has no such escapes and logfmt parsers reject them. A lone surrogate (how
Python carries a byte that is not UTF-8) is written as U+FFFD: it has no place in UTF-8 or in
strict JSON. A hostile process name can therefore never split a log line or forge a field.
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
    """One character as it is written inside a quoted value (a JSON string)."""
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    if char.isprintable():
        return char
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return _unicode_escape(code)


def _unicode_escape(code: int) -> str:
    """``\\uXXXX``; a character above U+FFFF as its UTF-16 surrogate pair, as JSON spells it."""
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def escape(value: str, also: str = "") -> str:
    """The inside of a JSON string for ``value``: what ``quote`` puts between the quotes.

    Characters in ``also`` are ``\\uXXXX``-escaped too, for a value that is itself split on
    them (see the ``top#`` entries in ``output``).
    """
    # Most values (process names, paths) need no escape at all: say so with C-level scans.
    if value.isprintable() and '"' not in value and "\\" not in value:
        for char in also:
            if char in value:
                break
        else:
            return value
    return "".join(
        _unicode_escape(ord(char)) if char in also else escape_char(char) for char in value
    )


def quote(value: str) -> str:
    """A value as it appears after ``key=``: bare when plain, else a JSON string."""
    if not needs_quotes(value):
        return value
    return '"' + escape(value) + '"'


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
