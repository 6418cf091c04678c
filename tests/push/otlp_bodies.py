"""OTLP request bodies as a collector reads them: parsed strictly with opentelemetry-proto.

Protobuf bodies must parse, carry no field the official messages do not know, and be exactly
the bytes the official runtime writes for the same message (so nothing is written in a way
only a lenient reader would take). JSON bodies must parse with unknown fields refused.
"""

from __future__ import annotations

import gzip

from google.protobuf import json_format
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _no_unknown_fields(message) -> None:
    assert len(UnknownFieldSet(message)) == 0, f"unknown fields in {type(message).__name__}"
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        items = value if descriptor.is_repeated else [value]
        for item in items:
            _no_unknown_fields(item)


def parse(body: bytes, content_type: str = PROTOBUF) -> ExportMetricsServiceRequest:
    """The request in ``body``, strictly; see the module docstring."""
    request = ExportMetricsServiceRequest()
    if content_type == PROTOBUF:
        request.ParseFromString(body)
        _no_unknown_fields(request)
        assert request.SerializeToString(deterministic=True) == body, "not canonical protobuf"
    elif content_type == JSON:
        json_format.Parse(body, request, ignore_unknown_fields=False)
    else:
        raise AssertionError(f"not an OTLP content type: {content_type!r}")
    return request


def parse_received(received) -> ExportMetricsServiceRequest:
    """A request a test receiver read, by its own Content-Type and Content-Encoding."""
    body = received.body
    if received.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return parse(body, received.headers["Content-Type"])


def metrics(request: ExportMetricsServiceRequest) -> list:
    [resource_metrics] = request.resource_metrics
    [scope_metrics] = resource_metrics.scope_metrics
    return list(scope_metrics.metrics)


def resource(request: ExportMetricsServiceRequest) -> dict[str, str]:
    attributes = request.resource_metrics[0].resource.attributes
    assert all(a.value.WhichOneof("value") == "string_value" for a in attributes)
    pairs = [(a.key, a.value.string_value) for a in attributes]
    assert len({key for key, _ in pairs}) == len(pairs), "a resource key twice"
    return dict(pairs)


def points(request: ExportMetricsServiceRequest) -> dict[tuple, tuple]:
    """``{(metric name, attributes): (metric, point)}`` for every data point of the request."""
    found: dict[tuple, tuple] = {}
    for metric in metrics(request):
        data = getattr(metric, metric.WhichOneof("data"))
        for point in data.data_points:
            attributes = tuple((a.key, a.value.string_value) for a in point.attributes)
            key = (metric.name, attributes)
            assert key not in found, f"{key} twice"
            found[key] = (metric, point)
    return found


def point_value(point) -> int | float:
    return point.as_int if point.WhichOneof("value") == "as_int" else point.as_double


def response(rejected: int = 0, message: str = "") -> bytes:
    """An ExportMetricsServiceResponse as a collector writes it (empty on full success)."""
    answer = ExportMetricsServiceResponse()
    if rejected or message:
        answer.partial_success.rejected_data_points = rejected
        answer.partial_success.error_message = message
    return answer.SerializeToString()
