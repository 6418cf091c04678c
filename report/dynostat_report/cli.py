"""``dynostat-report [FILE ...|-] [-o report.html] [--json summary.json]``.

Reads every input (several files merge by time), writes the page and the JSON summary, and
prints the summary in words. A line it cannot read is counted, never fatal; an input that
cannot be opened, or an output that cannot be written, is one clear line and exit status 2
or 1.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
import tempfile

from dynostat_report import __version__, inputs, text
from dynostat_report.reader import Reader
from dynostat_report.summary import summarize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

EXIT_OUTPUT_FAILED = 1
EXIT_USAGE = 2

EXAMPLES = """\
examples:
  heroku logs -n 1500 -a myapp | dynostat-report -o report.html
  dynostat-report drain-*.log.gz -o report.html --json summary.json
  dynostat-report export.log --no-html --json -     (the summary as JSON on stdout)
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dynostat-report",
        description=(
            "Turns Heroku logs (heroku logs, Logplex drain archives, dynostat JSON lines) "
            "into one self-contained HTML page per incident, a JSON summary and a text "
            "summary of what happened to each dyno."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="FILE",
        help="log files (gzip is read as is); '-' or none for stdin",
    )
    parser.add_argument(
        "-o",
        "--output",
        default="report.html",
        metavar="HTML",
        help="where to write the page (default: report.html)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the summary as JSON to FILE ('-' for stdout)",
    )
    parser.add_argument("--no-html", action="store_true", help="write no page")
    parser.add_argument("-q", "--quiet", action="store_true", help="print no text summary")
    parser.add_argument("--version", action="version", version=f"dynostat-report {__version__}")
    return parser.parse_args(argv)


def _fail(message: str, status: int) -> int:
    print(f"dynostat-report: {message}", file=sys.stderr)
    return status


def _write_atomically(path: str, content: str) -> None:
    """Writes the file whole or not at all: a failed run never leaves half a page."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".dynostat-report-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _size(path: str) -> str:
    size = os.path.getsize(path)
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024:.0f} kB"


def _usage_problem(names: list[str], wants_page: bool) -> str | None:
    """Why the command line cannot work, found before any input is read, or None."""
    if names.count("-") > 1:
        return "stdin ('-') can be read only once"
    if "-" in names and sys.stdin.isatty():
        return (
            "no input: name log files, or pipe logs in "
            "(heroku logs -n 1500 -a myapp | dynostat-report)"
        )
    if wants_page and importlib.util.find_spec("plotly") is None:
        return (
            "the page needs plotly: pip install 'dynostat[report]' "
            "(or use --no-html for the summaries alone)"
        )
    return None


def _read(names: list[str]) -> Reader:
    """Every input read into one reader; raises InputError before reading if one is missing."""
    sources = []
    try:
        for name in names:
            sources.append(inputs.open_source(name))
    except inputs.InputError:
        for source in sources:
            source.close()
        raise
    reader = Reader()
    for source in sources:
        try:
            reader.read_source(source)
        finally:
            source.close()
    reader.finish()
    return reader


def _write(args: argparse.Namespace, reader: Reader, summary: dict, names: list[str]) -> list:
    """Writes the page and the JSON; returns what was written, for the last line."""
    written = []
    if not args.no_html:
        from dynostat_report import page  # noqa: PLC0415 - only when a page is written

        _write_atomically(args.output, page.render(reader, summary, names))
        written.append(f"{args.output} ({_size(args.output)})")
    document = json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False)
    if args.json == "-":
        _say(sys.stdout, document)
    elif args.json:
        _write_atomically(args.json, document + "\n")
        written.append(args.json)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(args.inputs) or ["-"]
    problem = _usage_problem(names, wants_page=not args.no_html)
    if problem is not None:
        return _fail(problem, EXIT_USAGE)
    # The report makes millions of small objects that never form reference cycles; the
    # cyclic collector would walk them again and again for nothing (a tenth of a run).
    gc.disable()
    try:
        reader = _read(names)
    except inputs.InputError as exc:
        return _fail(f"cannot read {exc}", EXIT_USAGE)
    except KeyboardInterrupt:
        return 130
    summary = summarize(reader)
    try:
        written = _write(args, reader, summary, names)
    except OSError as exc:
        return _fail(
            f"cannot write {exc.filename or ''}: {exc.strerror or exc}", EXIT_OUTPUT_FAILED
        )
    if not args.quiet:
        message = text.render(summary)
        if written:
            message += "\n\nwrote " + ", ".join(written)
        # With the JSON on stdout, the words go to stderr so a pipe gets clean JSON.
        _say(sys.stderr if args.json == "-" else sys.stdout, message)
    return 0


def _say(stream: TextIO, text: str) -> None:
    """Writes text and a newline; a reader that went away (``| head``) is not an error."""
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        # Nobody reads the rest. Point the stream at /dev/null so the interpreter's last
        # flush at exit does not complain about the same pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
