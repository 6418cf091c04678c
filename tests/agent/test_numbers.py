"""One parser for every number read from the environment or the network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat.numbers import MAX_DIGITS, parse_decimal, parse_whole


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20", 20), (" 7\n", 7), ("007", 7), ("0", 0), ("100", 100), ("101", None)],
)
def test_plain_ascii_digits_are_whole_numbers_within_bounds(text, expected):
    assert parse_whole(text, 0, 100) == expected


@pytest.mark.parametrize(
    "text",
    [
        "²",  # passes str.isdigit, fails int()
        "١٢",  # Arabic-Indic digits: int() reads them as 12
        "1_000",  # int() reads it as 1000
        "+5",
        "-5",
        "5.0",
        "0x10",
        "",
        " ",
        "1e3",
        "\u00a05",  # a no-break space around a digit
        "9" * (MAX_DIGITS + 1),  # no text long enough to make the conversion expensive
        "1" * 5000,  # would make int() raise on Python 3.11+
    ],
)
def test_anything_else_is_not_a_whole_number(text):
    assert parse_whole(text, 0, 10**30) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20", 20.0), ("0.5", 0.5), (".5", 0.5), ("3.", 3.0), (" 1.25 ", 1.25), ("3601", None)],
)
def test_decimals_are_digits_with_at_most_one_point(text, expected):
    assert parse_decimal(text, 0.01, 3600) == expected


@pytest.mark.parametrize(
    "text",
    ["nan", "inf", "-1", "1e2", "1.2.3", ".", "", "\u0661.\u0665", "²", "1_0.5", "0x1p3", " . "],
)
def test_not_a_decimal(text):
    assert parse_decimal(text, 0.0, 10**9) is None


@given(st.text())
def test_any_text_gives_a_number_in_bounds_or_none_never_an_exception(text):
    whole = parse_whole(text, 1, 1000)
    assert whole is None or (isinstance(whole, int) and 1 <= whole <= 1000)
    decimal = parse_decimal(text, 0.01, 3600.0)
    assert decimal is None or 0.01 <= decimal <= 3600.0
    if whole is not None or decimal is not None:
        assert set(text.strip(" \t\r\n")) <= set("0123456789.")


@given(st.integers(0, 10**18))
def test_every_whole_number_written_in_ascii_reads_back(value):
    assert parse_whole(str(value), 0, 10**18) == value
