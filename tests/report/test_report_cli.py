"""The ``dynostat-report`` command as a user runs it: pipes, files, gzip, exit codes, the text
summary, and one clear line (never a traceback) when something cannot be done."""

from __future__ import annotations

import gzip
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from report_logs import heroku_logs, incident

from support.paths import REPORT


@pytest.fixture(scope="module")
def log_text() -> str:
    return "\n".join(heroku_logs(incident().records)) + "\n"


def run(command: list[str], cwd: Path, stdin: bytes | None = b"", **options):
    return subprocess.run(
        command, cwd=cwd, input=stdin, capture_output=True, timeout=120, check=False, **options
    )


def test_heroku_logs_piped_in_give_a_page_a_summary_and_words(report_command, tmp_path, log_text):
    result = run(
        [report_command, "-o", "report.html", "--json", "summary.json"],
        tmp_path,
        log_text.encode(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    words = result.stdout.decode()
    # Closest to a limit first: web.2 (108% of its memory quota), then web.1, worker.1.
    assert words.index("\nweb.2 ") < words.index("\nweb.1 ") < words.index("\nworker.1 ")
    assert "culprit pid 8 leaky_worker (20 zombies_rising, 6 tasks_near_limit)" in words
    assert "16 R14" in words
    assert "first failure 05:15:05 (EAGAIN): warned 20 min 6 s before" in words
    assert "wrote report.html" in words
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dynos"]["web.1"]["peak_tasks"] == 256
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert oct((tmp_path / "report.html").stat().st_mode & 0o777) == "0o644"


def test_files_and_gzip_and_stdin_together(report_command, tmp_path, log_text):
    lines = log_text.splitlines(keepends=True)
    third = len(lines) // 3
    (tmp_path / "a.log").write_text("".join(lines[:third]))
    (tmp_path / "b.log.gz").write_bytes(gzip.compress("".join(lines[third : 2 * third]).encode()))
    stdin = gzip.compress("".join(lines[2 * third :]).encode())
    result = run(
        [report_command, "a.log", "-", "b.log.gz", "--no-html", "--json", "-"], tmp_path, stdin
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["lines"] == len(lines)
    assert summary["dynos"]["web.2"]["errors"] == {"R14": 16}
    # With the JSON on stdout, the words go to stderr.
    assert b"web.2" in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_a_missing_file_is_one_line_and_status_2_before_any_work(report_command, tmp_path):
    (tmp_path / "there.log").write_text("")
    result = run([report_command, "there.log", "missing.log"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.decode() == (
        "dynostat-report: cannot read missing.log: No such file or directory\n"
    )
    assert not (tmp_path / "report.html").exists()


def test_a_directory_given_as_input_is_one_line(report_command, tmp_path):
    result = run([report_command, str(tmp_path)], tmp_path)
    assert result.returncode == 2
    assert result.stderr.decode().startswith("dynostat-report: cannot read ")
    assert b"Traceback" not in result.stderr


def test_an_output_that_cannot_be_written_is_one_line_and_leaves_nothing(
    report_command, tmp_path, log_text
):
    (tmp_path / "taken").mkdir()
    result = run([report_command, "-o", "taken"], tmp_path, log_text.encode())
    assert result.returncode == 1
    assert result.stderr.decode().startswith("dynostat-report: cannot write ")
    assert b"Traceback" not in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]


def test_a_terminal_on_stdin_is_not_waited_on(report_command, tmp_path):
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [report_command],
            cwd=tmp_path,
            stdin=terminal,
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.returncode == 2
    assert b"no input: name log files, or pipe logs in" in result.stderr


def test_an_input_with_no_dyno_lines_still_gives_a_page(report_command, tmp_path):
    result = run([report_command, "--json", "s.json"], tmp_path, b"just some\ntext\n")
    assert result.returncode == 0
    assert b"No dynostat, router or Heroku dyno lines found" in result.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["dynos"] == {}
    assert summary["skipped_lines"] == 2
    assert "No dynostat, router or Heroku dyno lines were found" in (
        (tmp_path / "report.html").read_text()
    )


@pytest.mark.parametrize("output", ["", "--json - -q"])
def test_a_reader_that_goes_away_gets_no_traceback(report_command, tmp_path, log_text, output):
    # `true` exits at once, long before the report has read its input and writes: every
    # write then meets a closed pipe.
    (tmp_path / "in.log").write_text(log_text)
    pipeline = subprocess.run(
        [
            "/bin/bash",
            "-c",
            f'{report_command} --no-html {output} < in.log | true; echo "${{PIPESTATUS[0]}}"',
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert pipeline.stdout == b"0\n"
    assert pipeline.stderr == b""


def test_process_names_cannot_drive_the_terminal(report_command, tmp_path):
    line = (
        "2026-11-27T05:27:22Z app[web.1]: source=web.1 dyno=x at=warn event=tasks_near_limit "
        'tasks=250 tasks_limit=256 pid=8 comm="\\u001b]0;owned\\u0007\\u001b[2J"'
    )
    result = run([report_command, "--no-html"], tmp_path, line.encode() + b"\n")
    assert result.returncode == 0
    assert b"\x1b" not in result.stdout
    assert b"\\x1b]0;owned\\x07\\x1b[2J" in result.stdout


def test_without_plotly_the_page_is_refused_clearly_and_summaries_still_work(tmp_path, log_text):
    # A virtual environment of the same Python without any package: like a checkout used
    # without `pip install '.[report]'`.
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    env = {**os.environ, "PYTHONPATH": str(REPORT)}
    refused = run([python, "-m", "dynostat_report"], tmp_path, log_text.encode(), env=env)
    assert refused.returncode == 2
    assert refused.stderr.decode() == (
        "dynostat-report: the page needs plotly: pip install 'dynostat[report]' "
        "(or use --no-html for the summaries alone)\n"
    )
    summaries = run(
        [python, "-m", "dynostat_report", "--no-html", "--json", "-", "-q"],
        tmp_path,
        log_text.encode(),
        env=env,
    )
    assert summaries.returncode == 0, summaries.stderr
    assert json.loads(summaries.stdout)["dynos"]["web.1"]["crashes"] == 1


def test_version_and_help(report_command, tmp_path):
    version = run([report_command, "--version"], tmp_path)
    assert version.stdout == b"dynostat-report 0.1.0\n"
    usage = run([report_command, "--help"], tmp_path)
    assert b"heroku logs -n 1500 -a myapp | dynostat-report -o report.html" in usage.stdout
