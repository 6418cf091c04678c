"""Numbers in text someone else wrote: config vars, command-line flags, HTTP answers.

Python's own conversions accept far more than a person means by a number: ``int`` takes
digits of every script (``'١٢'`` is 12) and underscores (``'1_000'``), ``str.isdigit`` says
yes to superscripts that ``int`` then refuses (``'²'``), ``float`` takes exponents, ``nan`` and
``inf``, and a string of many thousand digits makes ``int`` slow or raise. Every number the
agent reads from the environment or the network goes through this one parser instead: plain
ASCII decimal digits, optionally one decimal point, surrounding ASCII blanks ignored, and
anything else is "not a number" (None), never an exception.
"""

from __future__ import annotations

_DIGITS = frozenset("0123456789")
_BLANKS = " \t\r\n"
# More digits than any value the agent accepts could need (int64 has 19): longer text is
# refused before it is converted, so no input can make the conversion itself expensive.
MAX_DIGITS = 20


def _digits(text: str) -> bool:
    return 0 < len(text) <= MAX_DIGITS and set(text) <= _DIGITS


def parse_whole(text: str, low: int, high: int) -> int | None:
    """A whole number from ``low`` to ``high`` written in ASCII digits, else None."""
    text = text.strip(_BLANKS)
    if not _digits(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_decimal(text: str, low: float, high: float) -> float | None:
    """A number like ``20``, ``0.5`` or ``.5`` from ``low`` to ``high``, else None.

    No sign, no exponent, no ``nan``/``inf``: config values and protocol fields never need
    them, and refusing them keeps every accepted value finite.
    """
    text = text.strip(_BLANKS)
    whole, _, fraction = text.partition(".")
    if not (whole or fraction):
        return None
    if (whole and not _digits(whole)) or (fraction and not _digits(fraction)):
        return None
    value = float(text)
    return value if low <= value <= high else None
