"""Prometheus Pushgateway: the text exposition format, PUT to the dyno's own group.

Metric names are those of the metric table (``metrics``): what the OpenTelemetry
specification's rules make of the OTLP names, so they are the same whichever way a metric
reaches Prometheus. OTLP attributes become labels (``system.memory.state`` is
``system_memory_state``); gauges and up-down amounts are gauges, running totals counters.

The group is ``<url>/metrics/job/dynostat/instance/<source>``, plus ``/app/<name>`` when dyno
metadata names the app, so ``web.1`` of two apps sharing one Pushgateway never overwrite each
other. PUT replaces the whole group: a metric the sources could not read this time disappears
instead of lingering with an old value. No timestamps are sent (the Pushgateway rejects them);
it stamps ``push_time_seconds`` itself.
"""

from __future__ import annotations

import base64
import math
from urllib.parse import quote

from ..sample import Sample
from .metrics import COUNTER, Metric, families

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .metrics import Number

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHOD = "PUT"


def _path_segment(label: str, value: str) -> str:
    """One ``/label/value`` pair of a grouping key.

    A value holding ``/`` (or an empty one) cannot travel as a plain path segment; the
    Pushgateway accepts those as ``label@base64/<urlsafe base64>``.
    """
    if value and "/" not in value:
        return f"/{label}/{quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii") or "="
    return f"/{label}@base64/{encoded}"


def group_url(base_url: str, source: str, app: str) -> str:
    """Where this dyno's metrics go on the Pushgateway at ``base_url``."""
    url = base_url.rstrip("/") + "/metrics" + _path_segment("job", "dynostat")
    url += _path_segment("instance", source)
    if app:
        url += _path_segment("app", app)
    return url


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: Number) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(dyno: str, metric: Metric) -> str:
    pairs = [("dyno", dyno), *metric.prometheus_labels]
    return "{" + ",".join(f'{name}="{_label_value(value)}"' for name, value in pairs) + "}"


def encode(sample: Sample, dyno: str, dropped: int) -> bytes:
    """The request body for one sample: one family per metric name, every series labelled
    with the dyno's id and its metric's attributes."""
    lines: list[str] = []
    for group in families(sample, dropped):
        first = group[0][0]
        kind = "counter" if first.kind == COUNTER else "gauge"
        lines.append(f"# HELP {first.prometheus_name} {_help_text(first.description)}")
        lines.append(f"# TYPE {first.prometheus_name} {kind}")
        for metric, value in group:
            lines.append(f"{metric.prometheus_name}{_labels(dyno, metric)} {_number(value)}")
    return ("\n".join(lines) + "\n").encode("utf-8")
