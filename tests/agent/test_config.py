"""Config vars and flags: defaults, ranges, one clear error line per bad value, no secrets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynostat import config
from dynostat.cli import build_parser, config_flags, parse_args
from dynostat.output import Formatter
from dynostat.push.settings import PushSettings


def error_lines(env):
    _, errors = config.load(env)
    formatter = Formatter("web.1", "d")
    return [formatter.event_line(fields) for fields in errors]


def test_an_empty_environment_gives_the_documented_defaults():
    cfg, errors = config.load({})
    assert errors == []
    assert cfg == config.Config()
    assert (cfg.disable, cfg.interval, cfg.format, cfg.metric_prefix) == (
        False,
        20.0,
        "logfmt",
        "dynostat.",
    )
    assert (cfg.warn_tasks_pct, cfg.warn_memory_pct, cfg.top, cfg.push) == (80, 90, 3, None)


def test_every_variable_is_read():
    cfg, errors = config.load(
        {
            "DYNOSTAT_DISABLE": "TRUE",
            "DYNOSTAT_INTERVAL": "2.5",
            "DYNOSTAT_PROCESS_TYPES": "web, worker ,my-queue",
            "DYNOSTAT_FORMAT": "JSON",
            "DYNOSTAT_METRIC_PREFIX": "app.",
            "DYNOSTAT_WARN_TASKS_PCT": "70",
            "DYNOSTAT_WARN_MEMORY_PCT": "95",
            "DYNOSTAT_TOP": "5",
            "DYNOSTAT_URL": "http://127.0.0.1:4318/v1/metrics",
        }
    )
    assert errors == []
    assert cfg == config.Config(
        disable=True,
        interval=2.5,
        process_types=frozenset({"web", "worker", "my-queue"}),
        format="json",
        metric_prefix="app.",
        warn_tasks_pct=70,
        warn_memory_pct=95,
        top=5,
        push=PushSettings("http://127.0.0.1:4318/v1/metrics", "otlp", {}, 30),
    )


def test_a_bad_interval_gives_one_error_line_and_the_default():
    cfg, _ = config.load({"DYNOSTAT_INTERVAL": "abc"})
    assert cfg.interval == 20.0
    assert error_lines({"DYNOSTAT_INTERVAL": "abc"}) == [
        "source=web.1 dyno=d at=error event=config_invalid var=DYNOSTAT_INTERVAL value=abc"
        ' default=20 expected="seconds from 1 to 3600"'
    ]


@pytest.mark.parametrize("value", ["0", "0.5", "3600.5", "-5", "nan", "inf", "1e9", "20s"])
def test_the_interval_var_keeps_to_one_second_through_an_hour(value):
    cfg, errors = config.load({"DYNOSTAT_INTERVAL": value})
    assert cfg.interval == 20.0
    assert len(errors) == 1 and errors[0]["value"] == value


@pytest.mark.parametrize(("value", "seconds"), [("1", 1.0), ("3600", 3600.0), (" 10 ", 10.0)])
def test_the_interval_var_accepts_its_range(value, seconds):
    cfg, errors = config.load({"DYNOSTAT_INTERVAL": value})
    assert (cfg.interval, errors) == (seconds, [])


@pytest.mark.parametrize(
    ("var", "value", "field", "default"),
    [
        ("DYNOSTAT_DISABLE", "maybe", "disable", False),
        ("DYNOSTAT_PROCESS_TYPES", "web worker", "process_types", None),
        ("DYNOSTAT_PROCESS_TYPES", "web;rm -rf", "process_types", None),
        ("DYNOSTAT_PROCESS_TYPES", ",,", "process_types", None),
        ("DYNOSTAT_FORMAT", "xml", "format", "logfmt"),
        ("DYNOSTAT_METRIC_PREFIX", "has space", "metric_prefix", "dynostat."),
        ("DYNOSTAT_METRIC_PREFIX", "x" * 65, "metric_prefix", "dynostat."),
        ("DYNOSTAT_WARN_TASKS_PCT", "0", "warn_tasks_pct", 80),
        ("DYNOSTAT_WARN_TASKS_PCT", "101", "warn_tasks_pct", 80),
        ("DYNOSTAT_WARN_TASKS_PCT", "80.5", "warn_tasks_pct", 80),
        ("DYNOSTAT_WARN_MEMORY_PCT", "ninety", "warn_memory_pct", 90),
        ("DYNOSTAT_TOP", "0", "top", 3),
        ("DYNOSTAT_TOP", "21", "top", 3),
    ],
)
def test_each_bad_value_names_its_variable_and_falls_back(var, value, field, default):
    cfg, errors = config.load({var: value})
    assert getattr(cfg, field) == default
    assert len(errors) == 1
    assert errors[0]["at"] == "error" and errors[0]["event"] == "config_invalid"
    assert errors[0]["var"] == var and errors[0]["value"] == value[:100] + (
        "..." if len(value) > 100 else ""
    )


def test_several_bad_values_give_one_line_each_in_a_stable_order():
    env = {"DYNOSTAT_TOP": "x", "DYNOSTAT_FORMAT": "y", "DYNOSTAT_INTERVAL": "z"}
    assert [line.split()[4] for line in error_lines(env)] == [
        "var=DYNOSTAT_INTERVAL",
        "var=DYNOSTAT_FORMAT",
        "var=DYNOSTAT_TOP",
    ]


def test_a_hostile_value_cannot_forge_fields_or_split_the_line():
    (line,) = error_lines({"DYNOSTAT_FORMAT": 'x" at=ok\nsource=evil'})
    assert "\n" not in line
    assert line.endswith(
        'var=DYNOSTAT_FORMAT value="x\\" at=ok\\nsource=evil" default=logfmt'
        ' expected="logfmt or json"'
    )


def test_an_empty_prefix_is_allowed_but_other_empty_vars_mean_unset():
    cfg, errors = config.load(
        {"DYNOSTAT_METRIC_PREFIX": "", "DYNOSTAT_INTERVAL": "", "DYNOSTAT_FORMAT": ""}
    )
    assert errors == []
    assert (cfg.metric_prefix, cfg.interval, cfg.format) == ("", 20.0, "logfmt")


def test_secret_variables_are_named_but_their_value_is_never_printed():
    fields = config.invalid("DYNOSTAT_URL", "https://user:hunter2@x.example", "off", "a URL")
    assert "value" not in fields
    line = Formatter("web.1", "d").event_line(fields)
    assert "hunter2" not in line and "var=DYNOSTAT_URL" in line
    fields = config.invalid("DYNOSTAT_PUSH_HEADERS", "api-key=hunter2", "none", "Name=value")
    assert "hunter2" not in Formatter("web.1", "d").event_line(fields)


def test_a_bad_push_url_turns_push_off_and_is_never_echoed():
    cfg, errors = config.load({"DYNOSTAT_URL": "not a url hunter2"})
    assert cfg.push is None
    assert [(e["var"], e["reason"]) for e in errors] == [("DYNOSTAT_URL", "scheme_not_http")]
    assert "hunter2" not in repr(errors)
    assert config.load({"DYNOSTAT_URL": "  "})[0].push is None


def test_push_settings_are_read_here_with_the_rest_of_the_config():
    cfg, errors = config.load(
        {
            "DYNOSTAT_URL": " https://collector:4318/v1/metrics ",
            "DYNOSTAT_PUSH_PROTOCOL": "Pushgateway",
            "DYNOSTAT_PUSH_HEADERS": "X-Key=s3cret",
            "DYNOSTAT_PUSH_BUFFER": "5",
        }
    )
    assert errors == []
    assert (cfg.push.url, cfg.push.protocol, cfg.push.headers, cfg.push.buffer_size) == (
        "https://collector:4318/v1/metrics",
        "pushgateway",
        {"X-Key": "s3cret"},
        5,
    )


def test_the_dyno_and_its_metadata_are_read_here_too():
    cfg, _ = config.load(
        {
            "DYNO": " web.1 ",
            "HEROKU_DYNO_ID": "d-1",
            "HEROKU_APP_NAME": "shop",
            "DYNOSTAT_RESTARTS": "2",
        }
    )
    assert (cfg.dyno.name, cfg.dyno.id, cfg.dyno.app_name, cfg.restarts) == (
        "web.1",
        "d-1",
        "shop",
        2,
    )
    assert config.load({"DYNOSTAT_RESTARTS": "²"})[0].restarts == 0


@pytest.mark.parametrize(
    ("spec", "runs", "skips"),
    [
        (None, ["web", "worker", "clock", "my-queue"], ["run", "release", "scheduler"]),
        ("all", ["web", "run", "release", "scheduler"], []),
        ("ALL", ["web", "run"], []),
        ("web,worker", ["web", "worker"], ["run", "clock", "scheduler"]),
        ("run", ["run"], ["web"]),
    ],
)
def test_process_types_decide_where_the_agent_runs(spec, runs, skips):
    env = {} if spec is None else {"DYNOSTAT_PROCESS_TYPES": spec}
    cfg, errors = config.load(env)
    assert errors == []
    assert all(cfg.runs_in(t) for t in runs)
    assert not any(cfg.runs_in(t) for t in skips)


# -- flags ------------------------------------------------------------------------------------


def parse(argv, env=None):
    return config.load(env or {}, config_flags(parse_args(argv)))


def test_flags_override_config_vars():
    cfg, errors = parse(
        ["--interval", "0.5", "--format", "json", "--proc-root", "/p", "--cgroup-root", "/c"],
        {"DYNOSTAT_INTERVAL": "30", "DYNOSTAT_FORMAT": "logfmt"},
    )
    assert errors == []
    assert (cfg.interval, cfg.format, cfg.proc_root, cfg.cgroup_root) == (0.5, "json", "/p", "/c")


def test_without_flags_the_config_vars_and_defaults_stand():
    cfg, _ = parse([], {"DYNOSTAT_INTERVAL": "30"})
    assert (cfg.interval, cfg.count, cfg.proc_root, cfg.lock) == (30.0, None, "/proc", None)


def test_the_command_line_accepts_intervals_down_to_a_hundredth_of_a_second():
    assert parse(["--interval", "0.01"])[0].interval == 0.01
    # The config var keeps its floor of one second.
    cfg, errors = config.load({"DYNOSTAT_INTERVAL": "0.01"})
    assert cfg.interval == 20.0 and len(errors) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["--interval", "0.001"],
        ["--interval", "3601"],
        ["--interval", "x"],
        ["--count", "0"],
        ["--count", "1.5"],
        ["--format", "xml"],
        ["--bogus"],
    ],
)
def test_a_bad_command_line_exits_2_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert "usage: dynostat" in capsys.readouterr().err


def test_once_is_a_count_of_one_and_count_and_lock_are_kept():
    assert parse(["--once"])[0].count == 1
    assert parse(["--count", "5", "--lock", "/tmp/x.lock"])[0].count == 5
    assert parse(["--count", "5", "--lock", "/tmp/x.lock"])[0].lock == "/tmp/x.lock"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--once"],
        ["--interval", "0.01", "--count", "3"],
        ["--interval=5", "--format=json", "--lock", "/tmp/a b.lock"],
        ["--proc-root", "/p", "--cgroup-root=/c", "--once", "--count", "9"],
        ["--format", "logfmt", "--lock=/tmp/x"],
    ],
)
def test_the_direct_reader_and_argparse_agree_on_every_well_formed_command_line(argv):
    assert parse_args(argv) == vars(build_parser().parse_args(argv))


def test_argparse_still_serves_abbreviations_help_and_version(capsys):
    assert parse_args(["--int", "2"])["interval"] == 2.0
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "--interval S" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parse_args(["--version"])
    assert capsys.readouterr().out.startswith("dynostat ")


VARS = [
    "DYNOSTAT_DISABLE",
    "DYNOSTAT_INTERVAL",
    "DYNOSTAT_PROCESS_TYPES",
    "DYNOSTAT_FORMAT",
    "DYNOSTAT_METRIC_PREFIX",
    "DYNOSTAT_WARN_TASKS_PCT",
    "DYNOSTAT_WARN_MEMORY_PCT",
    "DYNOSTAT_TOP",
]


@given(st.dictionaries(st.sampled_from(VARS), st.text()))
def test_any_environment_gives_a_valid_config_and_at_most_one_line_per_variable(env):
    cfg, errors = config.load(env)
    assert 1 <= cfg.interval <= 3600
    assert cfg.format in config.FORMATS
    assert 1 <= cfg.top <= config.MAX_TOP
    assert 1 <= cfg.warn_tasks_pct <= 100 and 1 <= cfg.warn_memory_pct <= 100
    assert len(errors) == len({e["var"] for e in errors}) <= len(env)
    formatter = Formatter("web.1", "d")
    for fields in errors:
        assert "\n" not in formatter.event_line(fields)
