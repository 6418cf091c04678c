"""The decoder the README gives users for the agent's lines, taken from the README itself.

Tests read the agent's output with exactly the code users are told to copy, so the README's
grammar and decoder cannot drift from what the agent prints: a change to either that breaks
the other fails the tests. It is the one logfmt reader of the test suites.
"""

from __future__ import annotations

from support.paths import README

SECTION = "## What it prints"
FENCE = "```python\n"


def decoder_source() -> str:
    """The text of the first Python block of the README's "What it prints" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    start = section.index(FENCE) + len(FENCE)
    return section[start : section.index("```", start)]


def _load() -> dict:
    namespace: dict = {}
    exec(compile(decoder_source(), str(README), "exec"), namespace)
    return namespace


_DECODER = _load()

# fields(line) -> {key: value}; top(value) -> [(pid, comm, value), ...]
fields = _DECODER["fields"]
top = _DECODER["top"]
