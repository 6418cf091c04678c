"""OTLP/HTTP with JSON bodies: one ExportMetricsServiceRequest per sample.

The JSON follows the OTLP encoding rules so a collector's strict parser accepts it: field names
in lowerCamelCase, 64-bit integers (timestamps, integer values) as decimal strings, enum values
as integers. Integers stay integers (``asInt``); only the load averages and the agent's CPU
milliseconds are doubles.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..numbers import parse_whole
from ..sample import Sample
from .metrics import COUNTER, PUSH_DROPPED, Metric, Number, present

if TYPE_CHECKING:
    from ..config import Dyno

CONTENT_TYPE = "application/json"

# opentelemetry.proto.metrics.v1.AggregationTemporality
AGGREGATION_TEMPORALITY_CUMULATIVE = 2


def _nanoseconds(seconds: float) -> str:
    return str(int(seconds * 1_000_000_000))


def _string_attribute(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def resource_attributes(metadata: Dyno, source: str, dyno: str, host: str) -> list[dict[str, Any]]:
    """Who sent the sample: the app (when dyno metadata names it), the dyno and the host."""
    attributes = []
    app = metadata.app_name
    if app:
        attributes.append(_string_attribute("service.name", app))
    app_id = metadata.app_id
    if app_id:
        attributes.append(_string_attribute("heroku.app.id", app_id))
    attributes.append(_string_attribute("cloud.provider", "heroku"))
    attributes.append(_string_attribute("heroku.dyno", source))
    attributes.append(_string_attribute("service.instance.id", dyno))
    attributes.append(_string_attribute("host.name", host))
    return attributes


def _data_point(value: Number, time_ns: str, start_ns: str | None) -> dict[str, Any]:
    point: dict[str, Any] = {}
    if start_ns is not None:
        point["startTimeUnixNano"] = start_ns
    point["timeUnixNano"] = time_ns
    if isinstance(value, int):
        point["asInt"] = str(value)
    else:
        point["asDouble"] = float(value)
    return point


def _metric(metric: Metric, value: Number, time_ns: str, start_ns: str) -> dict[str, Any]:
    encoded: dict[str, Any] = {
        "name": metric.otlp_name,
        "description": metric.description,
        "unit": metric.otlp_unit,
    }
    if metric.kind == COUNTER:
        encoded["sum"] = {
            "dataPoints": [_data_point(value, time_ns, start_ns)],
            "aggregationTemporality": AGGREGATION_TEMPORALITY_CUMULATIVE,
            "isMonotonic": True,
        }
    else:
        encoded["gauge"] = {"dataPoints": [_data_point(value, time_ns, None)]}
    return encoded


def encode(
    sample: Sample,
    resource: list[dict[str, Any]],
    start_time: float,
    dropped: int,
) -> bytes:
    """The request body for one sample.

    ``start_time`` (seconds since the epoch) is when the sink started: the start of every
    cumulative sum it sends, so a backend sees one continuous series per dyno.
    """
    time_ns = _nanoseconds(sample.wall_time)
    start_ns = _nanoseconds(min(start_time, sample.wall_time))
    metrics = [_metric(metric, value, time_ns, start_ns) for metric, value in present(sample)]
    metrics.append(_metric(PUSH_DROPPED, dropped, time_ns, start_ns))
    request = {
        "resourceMetrics": [
            {
                "resource": {"attributes": resource},
                "scopeMetrics": [
                    {
                        "scope": {"name": "dynostat", "version": __version__},
                        "metrics": metrics,
                    }
                ],
            }
        ]
    }
    return json.dumps(request, separators=(",", ":")).encode("utf-8")


def rejected_points(body: bytes) -> int | None:
    """How many points a 2xx ExportMetricsServiceResponse says were rejected.

    0 for an empty body or a response without ``partialSuccess``; None when the body is not the
    JSON response OTLP promises (the caller reports it as a garbage response).
    """
    if not body.strip():
        return 0
    try:
        response = json.loads(body)
    except ValueError:
        return None
    if not isinstance(response, dict):
        return None
    partial = response.get("partialSuccess")
    if not isinstance(partial, dict):
        return 0
    rejected = partial.get("rejectedDataPoints", 0)
    # proto3 JSON writes int64 as a decimal string, but accepts a plain number too.
    if isinstance(rejected, int) and not isinstance(rejected, bool):
        rejected = str(rejected)
    return parse_whole(rejected, 0, 2**63 - 1) if isinstance(rejected, str) else None
