"""source= and dyno=, and the process type of classic and Fir dyno names."""

from __future__ import annotations

import os

import pytest

from dynostat import config
from dynostat.identity import LOCAL_SOURCE, identify, process_type


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
