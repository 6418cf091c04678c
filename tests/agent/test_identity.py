"""source= and dyno=, and the process type of classic and Fir dyno names."""

from __future__ import annotations

import os

import pytest

from dynostat import cli, config
from dynostat.identity import LOCAL_SOURCE, identify, process_type
from support.output import CapturedOutput
from support.paths import FIXTURES


@pytest.mark.parametrize(
    ("name", "ptype"),
    [
        ("web.1", "web"),
        ("worker.12", "worker"),
        ("run.4821", "run"),
        ("release.1", "release"),
        ("scheduler.2718", "scheduler"),
        ("my_queue.3", "my_queue"),
        ("web-12a34b56d-e78f9", "web"),
        ("worker-5d8f9c7b4-x2x9z", "worker"),
        ("my-worker-5d8f9c7b4-x2x9z", "my-worker"),
        ("a-b-c-5d8f9c7b4-x2x9z", "a-b-c"),
        ("run-4821", "run"),
        ("web", "web"),
        ("web.x", "web.x"),
    ],
)
def test_the_process_type_of_classic_and_fir_dyno_names(name, ptype):
    assert process_type(name) == ptype


def test_source_is_the_dyno_name_as_heroku_shows_it():
    identity = identify(config.load({"DYNO": "web.1", "HEROKU_DYNO_ID": "1vac4117-c29f"})[0].dyno)
    assert (identity.source, identity.dyno) == ("web.1", "1vac4117-c29f")
    assert (
        identify(config.load({"DYNO": "web-12a34b56d-e78f9"})[0].dyno).source
        == "web-12a34b56d-e78f9"
    )


def test_without_dyno_metadata_the_dyno_is_the_hostname():
    assert identify(config.load({"DYNO": "web.1"})[0].dyno).dyno == os.uname().nodename
    assert (
        identify(config.load({"DYNO": "web.1", "HEROKU_DYNO_ID": "  "})[0].dyno).dyno
        == os.uname().nodename
    )


def test_run_by_hand_outside_a_dyno_the_source_says_local():
    assert identify(config.load({})[0].dyno).source == LOCAL_SOURCE == "local"
    assert identify(config.load({"DYNO": ""})[0].dyno).source == "local"


def test_drop_in_mode_names_the_dyno_as_log_runtime_metrics_does():
    metadata = config.load(
        {"DYNO": "web.1", "HEROKU_APP_ID": "9b1f6f7e-aaaa", "HEROKU_DYNO_ID": "1vac4117-c29f"}
    )[0].dyno
    assert identify(metadata, drop_in=True).dyno == "heroku.9b1f6f7e-aaaa.1vac4117-c29f"
    assert identify(metadata, drop_in=True).source == "web.1"
    assert identify(metadata).dyno == "1vac4117-c29f", "only in drop-in mode"


@pytest.mark.parametrize(
    "env",
    [{"HEROKU_DYNO_ID": "1vac4117-c29f"}, {"HEROKU_APP_ID": "9b1f6f7e-aaaa"}, {}],
)
def test_drop_in_mode_without_both_ids_keeps_the_usual_dyno(env):
    metadata = config.load({"DYNO": "web.1", **env})[0].dyno
    assert identify(metadata, drop_in=True) == identify(metadata)


def test_an_empty_metric_prefix_prints_the_drop_in_dyno_whole_on_every_line():
    app_id, dyno_id = "9b1f6f7e-0000-4000-8000-0123456789ab", "0c7f1b6e-5d0a-4c31-9a3e-7d2f61e0b9aa"
    tree = FIXTURES / "captured-dyno-like"
    out = CapturedOutput()
    try:
        status = cli.main(
            ["--once", "--proc-root", str(tree / "proc"), "--cgroup-root", str(tree / "cgroup")],
            env={
                "DYNO": "web.1",
                "DYNOSTAT_METRIC_PREFIX": "",
                "HEROKU_APP_ID": app_id,
                "HEROKU_DYNO_ID": dyno_id,
            },
            stdout_fd=out.fd,
        )
        lines = out.lines()
    finally:
        out.close()
    assert status == 0
    assert lines
    # 80 characters: longer than other names may be, and never cut.
    head = f"source=web.1 dyno=heroku.{app_id}.{dyno_id} "
    assert all(line.startswith(head) for line in lines)
    assert any(" sample#memory_total=3.27MB " in line for line in lines)
