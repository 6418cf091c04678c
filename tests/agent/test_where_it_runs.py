"""Where a launched agent runs: the agent's own decision on every case of the table the
launcher's bats suite runs live (tests/cases/process_types.tsv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynostat import cli, config
from support.paths import PROCESS_TYPE_CASES

VARIABLES = ("DYNO", "DYNOSTAT_PROCESS_TYPES", "DYNOSTAT_DISABLE")


def read_cases(path: Path = PROCESS_TYPE_CASES) -> list:
    """One pytest.param(env, runs, config_invalid) per row, named after its line."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        assert len(fields) == 5, f"{path.name}:{number}: {len(fields)} columns, not 5"
        if fields[0] == "DYNO":
            assert tuple(fields) == (*VARIABLES, "runs", "config_invalid")
            continue
        env = {}
        for name, value in zip(VARIABLES, fields):
            if value != "(unset)":
                env[name] = "" if value == "(empty)" else value
        runs, invalid = fields[3], fields[4]
        assert runs in ("yes", "no"), f"{path.name}:{number}: runs is {runs!r}"
        invalid_vars = [] if invalid == "-" else invalid.split(",")
        cases.append(pytest.param(env, runs == "yes", invalid_vars, id=f"line{number}"))
    return cases


CASE_PARAMS = read_cases()


def test_the_table_covers_every_kind_of_case():
    # Not a formality: a table that lost its rows would pass every case below.
    assert len(CASE_PARAMS) >= 50
    runs = [case.values[1] for case in CASE_PARAMS]
    assert runs.count(True) >= 20
    assert runs.count(False) >= 20
    assert sum(bool(case.values[2]) for case in CASE_PARAMS) >= 8


@pytest.mark.parametrize(("env", "runs", "config_invalid"), CASE_PARAMS)
def test_the_agent_decides_each_case_of_the_shared_table(env, runs, config_invalid):
    cfg, errors = config.load(env, cli.config_flags(cli.parse_args(["--lock", "/run/agent.lock"])))
    stays_out = cfg.must_stay_out()
    assert (not stays_out) is runs
    # main() prints the config errors only once it knows it runs.
    printed = [] if stays_out else [fields["var"] for fields in errors]
    assert printed == config_invalid


@pytest.mark.parametrize(("env", "runs", "config_invalid"), CASE_PARAMS)
def test_run_by_hand_the_agent_samples_in_every_case_but_says_the_same_errors(
    env, runs, config_invalid
):
    cfg, errors = config.load(env, cli.config_flags(cli.parse_args([])))
    assert cfg.must_stay_out() is False
    if runs:
        assert [fields["var"] for fields in errors] == config_invalid
