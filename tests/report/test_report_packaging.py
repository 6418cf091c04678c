"""The report stays out of the dyno: the agent never imports it, the slug never carries it,
published releases leave it out; and it installs as users install it, on every CPython from
3.9 up that this machine has."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import tomllib
from report_logs import heroku_logs, incident

from support.paths import AGENT, REPO, REPORT


def test_the_agent_never_imports_the_report_or_its_charting_library():
    code = (
        "import sys, pkgutil, importlib; sys.path.insert(0, sys.argv[1]); import dynostat; "
        "[importlib.import_module(m.name) for m in "
        "pkgutil.walk_packages(dynostat.__path__, 'dynostat.')]; "
        "print(sorted(n for n in sys.modules if n.split('.')[0] in "
        "('dynostat_report', 'plotly', 'narwhals')))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(AGENT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
    for path in AGENT.rglob("*"):
        if path.is_file():
            assert b"dynostat_report" not in path.read_bytes(), path


def test_the_slug_gets_the_agent_and_not_the_report(tmp_path):
    script = f'source "{REPO}/bin/lib/agent.sh"; agent::install "{REPO}" "{tmp_path}/slug"'
    subprocess.run(["bash", "-c", script], check=True, timeout=60)
    installed = sorted(
        str(path.relative_to(tmp_path / "slug")) for path in (tmp_path / "slug").rglob("*")
    )
    assert "agent/dynostat/cli.py" in installed
    assert not [name for name in installed if "report" in name or "plotly" in name]


def test_published_releases_leave_the_report_out():
    descriptor = tomllib.loads((REPO / "buildpack.toml").read_text())
    assert "report/" in descriptor["publish"]["Ignore"]["files"]


def test_the_report_extra_pins_what_the_tests_run_with():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["report"]
    pins = (REPO / "tests" / "requirements.txt").read_text().splitlines()
    assert extra == ["plotly==7.1.0"]
    assert extra[0] in pins
    assert project["scripts"] == {"dynostat-report": "dynostat_report.cli:main"}
    assert project["requires-python"] == ">=3.9"


def test_the_wheel_holds_the_report_its_page_assets_and_command(tmp_path):
    # Built from a copy, so the checkout is left as it was; no network: the test
    # environment's pinned setuptools builds it.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(REPORT, source / "report", ignore=shutil.ignore_patterns("__py*"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("dynostat-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read("dynostat-0.1.0.dist-info/METADATA").decode()
        entry_points = archive.read("dynostat-0.1.0.dist-info/entry_points.txt").decode()
    assert "dynostat_report/assets/report.js" in names
    assert "dynostat_report/assets/report.css" in names
    assert "dynostat_report/reader.py" in names
    assert not [name for name in names if name.startswith("dynostat/")]
    assert 'Requires-Dist: plotly==7.1.0; extra == "report"' in metadata
    assert "dynostat-report = dynostat_report.cli:main" in entry_points


def interpreters() -> list[str]:
    """Every distinct CPython 3.9 or newer on this machine (PATH, /usr/bin, pyenv)."""
    found = {os.path.realpath(sys.executable): sys.executable}
    for minor in range(9, 20):
        candidates = [shutil.which(f"python3.{minor}"), f"/usr/bin/python3.{minor}"]
        candidates += glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3"))
        for candidate in candidates:
            # A pyenv shim exists for versions it will not run: ask each one.
            if candidate and os.access(candidate, os.X_OK) and _runs(candidate):
                found.setdefault(os.path.realpath(candidate), candidate)
    return sorted(found.values())


def _runs(python: str) -> bool:
    probe = subprocess.run(
        [python, "-I", "-S", "-c", "pass"], capture_output=True, check=False, timeout=60
    )
    return probe.returncode == 0


@pytest.mark.parametrize("python", interpreters())
def test_the_report_runs_on_this_python(python, tmp_path):
    # The page's library is a stand-in here (the extra is installed for one Python only);
    # everything of the report's own runs, the page included.
    stand_in = tmp_path / "stand-in" / "plotly"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("")
    (stand_in / "offline.py").write_text("def get_plotlyjs():\n    return '/* plotly.js */'\n")
    (tmp_path / "in.log").write_text("\n".join(heroku_logs(incident(minutes=30).records)))
    code = (
        "import sys; sys.path[:0] = sys.argv[1:3]; del sys.argv[1:3]; "
        "from dynostat_report.cli import main; sys.exit(main())"
    )
    result = subprocess.run(
        [
            python,
            "-I",
            "-c",
            code,
            str(REPORT),
            str(tmp_path / "stand-in"),
            "in.log",
            "-o",
            "page.html",
            "--json",
            "-",
            "-q",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dynos"]["web.2"]["peak_memory_mb"] > 300
    assert "/* plotly.js */" in (tmp_path / "page.html").read_text()
