"""Prometheus Pushgateway: the text exposition format, PUT to the dyno's own group.

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
from .metrics import PUSH_DROPPED, Metric, Number, present

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


def _family(metric: Metric, value: Number, labels: str) -> list[str]:
    if metric.prometheus_scale != 1.0:
        value = value * metric.prometheus_scale
    return [
        f"# HELP {metric.prometheus_name} {_help_text(metric.description)}",
        f"# TYPE {metric.prometheus_name} {metric.kind}",
        f"{metric.prometheus_name}{labels} {_number(value)}",
    ]


def encode(sample: Sample, dyno: str, dropped: int) -> bytes:
    """The request body for one sample; every series carries the dyno id as a label."""
    labels = f'{{dyno="{_label_value(dyno)}"}}'
    lines: list[str] = []
    for metric, value in present(sample):
        lines.extend(_family(metric, value, labels))
    lines.extend(_family(PUSH_DROPPED, dropped, labels))
    return ("\n".join(lines) + "\n").encode("utf-8")
