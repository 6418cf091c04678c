"""The one place the environment is read: config vars, dyno metadata and command-line flags.

``load(env, flags)`` turns them into one typed record, ``Config``, that every other module
receives; no other module reads the environment. A bad value never stops the agent: it gives
one ``at=error event=config_invalid`` line naming the variable, the value and the default,
and the default is used. A variable set to the empty string counts as unset, except
``DYNOSTAT_METRIC_PREFIX`` where empty is meaningful (drop-in log-runtime-metrics names).
Values of variables that may hold a secret (the push URL and headers, and the endpoints and
headers of the app's OpenTelemetry exporter) are never printed.
"""

from __future__ import annotations

from dynostat.identity import process_type
from dynostat.numbers import parse_decimal, parse_whole
from dynostat.records import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dynostat.records import Fields

DEFAULT_INTERVAL = 20.0
MIN_INTERVAL = 1.0
MAX_INTERVAL = 3600.0
# The command line accepts much shorter intervals than the config var, for benchmarks and
# tests that want many samples quickly; dynos get at least one second.
MIN_CLI_INTERVAL = 0.01
MAX_TOP = 20
DEFAULT_TOP = 3

# One-off `heroku run`, release phase and scheduler dynos are short and their output is
# often parsed by scripts, so by default the agent stays out of them.
DEFAULT_EXCLUDED_TYPES = frozenset({"run", "release", "scheduler"})
ALL_TYPES = "all"

# Process types are compared without regard to ASCII case: `Web`, `WEB` and `web` name one
# type (as `all`, `ALL` and `All` all mean every type). Only A-Z fold, so no other letter can
# turn into an ASCII one (str.lower() makes the Kelvin sign a "k").
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

FORMATS = ("logfmt", "json")

# Variables whose value may carry a credential; a bad value is named, never shown.
SECRET_VARS = frozenset(
    {
        "DYNOSTAT_URL",
        "DYNOSTAT_PUSH_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    }
)

# Plain character sets rather than regular expressions: the re module would cost the agent
# several hundred kilobytes of memory for two checks made once at start.
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_PROCESS_TYPE_CHARS = _ALNUM | frozenset("_-")
_METRIC_PREFIX_CHARS = _ALNUM | frozenset("_.-")
MAX_PREFIX_CHARS = 64

# How much of a bad value an error line shows: enough to recognise a typo.
_SHOWN_VALUE_CHARS = 100


# How many crash re-executions happened in a row; the supervisor sets it for the agent it
# starts again, and only the back-off reads it.
RESTARTS_VAR = "DYNOSTAT_RESTARTS"
MAX_RESTARTS = 1000

# The variables the push reads, handed to push.settings when a push is asked for: its own,
# then those of the app's OpenTelemetry SDK (read with DYNOSTAT_PUSH_PROTOCOL=otlp; see
# push/settings.py for when each counts).
PUSH_VARS = (
    "DYNOSTAT_URL",
    "DYNOSTAT_PUSH_PROTOCOL",
    "DYNOSTAT_PUSH_ENCODING",
    "DYNOSTAT_PUSH_COMPRESSION",
    "DYNOSTAT_PUSH_HEADERS",
    "DYNOSTAT_PUSH_BUFFER",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
)


class Dyno(Frozen):
    """Who the agent runs for, from the dyno's environment (dyno metadata where it is on).

    ``name`` is ``DYNO`` (``web.1``; empty outside a dyno); the rest come from Heroku's dyno
    metadata (``heroku labs:enable runtime-dyno-metadata``) and are empty without it.
    """

    __slots__ = (
        "name",
        "id",
        "app_name",
        "app_id",
        "release_version",
        "release_commit",
        "release_created_at",
    )
    _defaults = dict.fromkeys(__slots__, "")


# (Dyno field, variable)
_DYNO_VARS = (
    ("name", "DYNO"),
    ("id", "HEROKU_DYNO_ID"),
    ("app_name", "HEROKU_APP_NAME"),
    ("app_id", "HEROKU_APP_ID"),
    ("release_version", "HEROKU_RELEASE_VERSION"),
    ("release_commit", "HEROKU_SLUG_COMMIT"),
    ("release_created_at", "HEROKU_RELEASE_CREATED_AT"),
)


# Field -> default. A slotted record rather than a dataclass: dataclasses (with inspect, ast,
# dis and re behind it) would cost the agent megabytes of memory for one settings record.
_CONFIG_DEFAULTS = {
    "disable": False,
    "interval": DEFAULT_INTERVAL,
    # None means the default rule (every type but run, release, scheduler).
    "process_types": None,
    "format": "logfmt",
    "metric_prefix": "dynostat.",
    "warn_tasks_pct": 80,
    "warn_memory_pct": 90,
    "top": DEFAULT_TOP,
    "push": None,  # PushSettings when a push is asked for (see push.settings)
    "dyno": Dyno(),
    "restarts": 0,  # crash re-executions in a row before this start
    "count": None,  # samples to take before exiting; None = until stopped
    "proc_root": "/proc",
    "cgroup_root": "/sys/fs/cgroup",
    "lock": None,
}


class Config(Frozen):
    """The agent's settings after config vars and flags; every field valid by construction."""

    __slots__ = tuple(_CONFIG_DEFAULTS)
    _defaults = _CONFIG_DEFAULTS

    def runs_in(self, process_type: str) -> bool:
        """Whether DYNOSTAT_PROCESS_TYPES lets the agent run in dynos of this process type."""
        folded = process_type.translate(_ASCII_LOWER)
        if self.process_types is None:
            return folded not in DEFAULT_EXCLUDED_TYPES
        return ALL_TYPES in self.process_types or folded in self.process_types

    def must_stay_out(self) -> bool:
        """Whether a launched agent (one with ``--lock``) must not run in this dyno.

        The one place that decides it. The launcher starts the agent in every dyno except
        where this provably says True (see vendor/dynostat-launcher.sh), and both are tested
        against the cases of tests/cases/process_types.tsv.
        """
        if self.lock is None:
            return False  # run by hand: the user asked for samples
        if self.disable:
            return True
        # No dyno name: not a dyno, or a `heroku ps:exec` session, whose dyno has its own
        # agent already (or, being a one-off, is meant to have none).
        return not self.dyno.name or not self.runs_in(process_type(self.dyno.name))


# -- parsers: text -> value, or None when the text is not a valid value ---------------------


def _parse_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    return None


def _parse_process_types(text: str) -> frozenset[str] | None:
    """The listed process types, case-folded; None unless every name is a valid one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or not all(_is_process_type(name) for name in names):
        return None
    return frozenset(name.translate(_ASCII_LOWER) for name in names)


def _parse_format(text: str) -> str | None:
    lowered = text.strip().lower()
    return lowered if lowered in FORMATS else None


def _is_process_type(name: str) -> bool:
    """Heroku process type names: letters, digits, ``_`` and ``-``, starting alphanumeric."""
    return name[:1] in _ALNUM and set(name) <= _PROCESS_TYPE_CHARS


def _parse_prefix(text: str) -> str | None:
    if len(text) <= MAX_PREFIX_CHARS and set(text) <= _METRIC_PREFIX_CHARS:
        return text
    return None


# (variable, Config field, parser, default as the error line shows it, what is expected)
_VARS: tuple[tuple[str, str, Callable[[str], object], str, str], ...] = (
    ("DYNOSTAT_DISABLE", "disable", _parse_bool, "false", "true or false"),
    (
        "DYNOSTAT_INTERVAL",
        "interval",
        lambda text: parse_decimal(text, MIN_INTERVAL, MAX_INTERVAL),
        "20",
        "seconds from 1 to 3600",
    ),
    (
        "DYNOSTAT_PROCESS_TYPES",
        "process_types",
        _parse_process_types,
        "all-but-run,release,scheduler",
        "comma list of process types, or all",
    ),
    ("DYNOSTAT_FORMAT", "format", _parse_format, "logfmt", "logfmt or json"),
    (
        "DYNOSTAT_METRIC_PREFIX",
        "metric_prefix",
        _parse_prefix,
        "dynostat.",
        "up to 64 of A-Z a-z 0-9 _ . -",
    ),
    (
        "DYNOSTAT_WARN_TASKS_PCT",
        "warn_tasks_pct",
        lambda text: parse_whole(text, 1, 100),
        "80",
        "whole percent from 1 to 100",
    ),
    (
        "DYNOSTAT_WARN_MEMORY_PCT",
        "warn_memory_pct",
        lambda text: parse_whole(text, 1, 100),
        "90",
        "whole percent from 1 to 100",
    ),
    (
        "DYNOSTAT_TOP",
        "top",
        lambda text: parse_whole(text, 1, MAX_TOP),
        str(DEFAULT_TOP),
        f"whole number from 1 to {MAX_TOP}",
    ),
)

# Variables where the empty string is a value of its own rather than "unset".
_EMPTY_IS_A_VALUE = frozenset({"DYNOSTAT_METRIC_PREFIX"})


def invalid(var: str, value: str, default: str, expected: str, reason: str | None = None) -> Fields:
    """The fields of one ``config_invalid`` error line (no value for a secret variable).

    ``reason`` is a short code for what is wrong when the value itself cannot be shown.
    """
    fields: Fields = {"at": "error", "event": "config_invalid", "var": var}
    if var not in SECRET_VARS:
        shown = value if len(value) <= _SHOWN_VALUE_CHARS else value[:_SHOWN_VALUE_CHARS] + "..."
        fields["value"] = shown
    if reason is not None:
        fields["reason"] = reason
    fields["default"] = default
    fields["expected"] = expected
    return fields


def load(
    env: Mapping[str, str], flags: Mapping[str, object] | None = None
) -> tuple[Config, list[Fields]]:
    """The config the environment and the command line ask for, and one error line's fields
    per bad variable. Flags that were given (not None) take precedence over config vars."""
    values: dict[str, object] = {}
    errors: list[Fields] = []
    for var, field_name, parse, default, expected in _VARS:
        text = env.get(var)
        if text is None or (text == "" and var not in _EMPTY_IS_A_VALUE):
            continue
        value = parse(text)
        if value is None:
            errors.append(invalid(var, text, default, expected))
            continue
        values[field_name] = value
    values["dyno"] = Dyno(**{field: env.get(var, "").strip() for field, var in _DYNO_VARS})
    restarts = parse_whole(env.get(RESTARTS_VAR, ""), 0, MAX_RESTARTS)
    values["restarts"] = 0 if restarts is None else restarts
    # A push is asked for by a URL, or by DYNOSTAT_PUSH_PROTOCOL=otlp alone (then it goes where
    # the app's OpenTelemetry settings point); the app's OTel settings alone never ask for one.
    asked_protocol = env.get("DYNOSTAT_PUSH_PROTOCOL", "").strip().lower()
    if env.get("DYNOSTAT_URL", "").strip() or asked_protocol == "otlp":
        # Imported only now: checking a URL costs 2.1 MB an agent without push must not pay.
        from dynostat.push import settings  # noqa: PLC0415

        values["push"], push_errors = settings.parse({var: env.get(var, "") for var in PUSH_VARS})
        errors.extend(push_errors)
    values.update({name: value for name, value in (flags or {}).items() if value is not None})
    return Config(**values), errors  # type: ignore[arg-type]
