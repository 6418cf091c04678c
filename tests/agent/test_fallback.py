"""The psutil sampler used where there is no procfs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dynostat.fallback import FallbackSampler
from dynostat.sampler import make_sampler
from support.paths import AGENT


def test_make_sampler_falls_back_when_the_proc_root_does_not_exist(tmp_path):
    reports = []
    sampler = make_sampler(str(tmp_path / "no-proc"), str(tmp_path), 3, reports.append)
    assert isinstance(sampler, FallbackSampler)
    first = sampler.sample(time.time())
    sampler.sample(time.time())
    assert reports == [
        {
            "at": "info",
            "event": "fallback_sampler",
            "proc_root": str(tmp_path / "no-proc"),
            "reason": "no procfs: sampling with psutil, memory is the whole machine's",
        }
    ], "said once, not every tick"
    assert first.load is not None
    assert first.tasks.processes > 1
    assert first.tasks.threads >= first.tasks.processes
    assert first.memory.rss > 0 and first.memory.quota > first.memory.rss
    assert first.top_rss and all(culprit.count > 0 for culprit in first.top_rss)


def test_without_psutil_only_load_is_sampled_and_it_says_why(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # makes `import psutil` fail
    reports = []
    sample = FallbackSampler(top=3, report=reports.append).sample(1.0)
    assert sample.load is not None
    assert sample.tasks is None and sample.memory is None
    assert reports[0]["reason"] == "no procfs and no psutil: only load is sampled"


def test_the_agent_modules_do_not_import_psutil_on_linux():
    """psutil is not on a dyno: only fallback.py may import it, and only without procfs."""
    code = (
        "import sys, time; from dynostat.sampler import make_sampler; "
        "make_sampler().sample(time.time()); print('psutil' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(AGENT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "False\n"
