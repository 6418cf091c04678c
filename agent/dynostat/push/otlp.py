"""OTLP/HTTP: one ExportMetricsServiceRequest per sample, as protobuf (the default) or JSON.

Protobuf is what OTLP exporters send by default and what every receiver accepts; JSON follows
the OTLP JSON rules so a strict parser accepts it too (lowerCamelCase field names, 64-bit
integers as decimal strings, enums as integers). Both are built from the one metric table
(``metrics``), with the same resource, names, units, kinds and start times.

Resource: the attributes OpenTelemetry's Heroku resource conventions map from dyno metadata
(``service.name`` from ``HEROKU_APP_NAME``, ``service.instance.id`` from ``HEROKU_DYNO_ID``,
``service.version`` from ``HEROKU_RELEASE_VERSION``, ``heroku.app.id``, ``heroku.release.commit``,
``heroku.release.creation_timestamp``, ``cloud.provider=heroku``), the dyno's name and the host
name; then ``OTEL_RESOURCE_ATTRIBUTES`` over those, as an SDK merges what the user set over
what it detected, and ``OTEL_SERVICE_NAME`` over everything. ``service.name`` is never absent:
without any of them it is ``unknown_service:dynostat``, as the conventions ask.

Start times: every cumulative sum carries the time its running total started from. That is the
time the push started for all of them (what an SDK's asynchronous counters do), and stays the
same for as long as the counter keeps counting; when a counter goes down (its source was reset)
its start moves to the previous sample's time, so a backend sees a reset, not a negative rate.
"""

from __future__ import annotations

import math

from .. import __version__
from ..identity import LOCAL_SOURCE
from ..numbers import parse_whole
from ..output import plain_text
from . import protobuf as pb
from .metrics import COUNTER, GAUGE, Metric, families

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Dyno
    from ..sample import Sample
    from .metrics import Number

PROTOBUF = "protobuf"
JSON = "json"
CONTENT_TYPES = {PROTOBUF: "application/x-protobuf", JSON: "application/json"}

SCOPE_NAME = "dynostat"
UNKNOWN_SERVICE = "unknown_service:dynostat"

# opentelemetry.proto.metrics.v1.AggregationTemporality
AGGREGATION_TEMPORALITY_CUMULATIVE = 2

# Which int64 values a data point can carry as an integer; anything else goes as a double.
_INT64_RANGE = range(pb.INT64_MIN, pb.INT64_MAX + 1)


def resource_attributes(
    metadata: Dyno,
    source: str,
    dyno: str,
    host: str,
    *,
    service_name: str = "",
    configured: tuple[tuple[str, str], ...] = (),
) -> list[tuple[str, str]]:
    """Who sent the sample, as ``(key, value)`` pairs; see the module docstring.

    ``source`` and ``dyno`` are what start the agent's lines (the dyno's name, and its id or
    host name); ``service_name`` and ``configured`` are ``OTEL_SERVICE_NAME`` and the pairs of
    ``OTEL_RESOURCE_ATTRIBUTES``.
    """
    attributes: dict[str, str] = {"service.name": ""}
    if metadata.app_name:
        attributes["service.name"] = metadata.app_name
    attributes["service.instance.id"] = metadata.id or dyno
    if metadata.release_version:
        attributes["service.version"] = metadata.release_version
    if metadata.app_id:
        attributes["heroku.app.id"] = metadata.app_id
    if metadata.release_commit:
        attributes["heroku.release.commit"] = metadata.release_commit
    if metadata.release_created_at:
        attributes["heroku.release.creation_timestamp"] = metadata.release_created_at
    on_a_dyno = source != LOCAL_SOURCE
    if on_a_dyno or metadata.app_id:
        attributes["cloud.provider"] = "heroku"
    if on_a_dyno:
        attributes["heroku.dyno.name"] = source
    attributes["host.name"] = host
    attributes.update(configured)
    attributes["service.name"] = service_name or attributes["service.name"] or UNKNOWN_SERVICE
    return [(plain_text(key), plain_text(value)) for key, value in attributes.items()]


class StartTimes:
    """The start time of each cumulative series, in nanoseconds; see the module docstring.

    State is one entry per counter series of the metric table: it never grows with time.
    """

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        # (name, attributes) -> [start_ns, last value, last time_ns]
        self._counters: dict[tuple[str, tuple], list] = {}

    def of(self, metric: Metric, value: Number, time_ns: int) -> int:
        if metric.kind != COUNTER:
            return min(self.start_ns, time_ns)
        key = (metric.otlp_name, metric.attributes)
        state = self._counters.get(key)
        if state is None:
            state = self._counters[key] = [min(self.start_ns, time_ns), value, time_ns]
        elif value < state[1]:
            # The running total was reset since the last sample: it starts again from then.
            state[0] = min(state[2], time_ns)
        state[1], state[2] = value, time_ns
        return state[0]


def _is_int64(value: Number) -> bool:
    return isinstance(value, int) and value in _INT64_RANGE


# -- protobuf ----------------------------------------------------------------------------------


def _pb_key_value(key: str, value: str) -> bytes:
    # KeyValue { key = 1; AnyValue value = 2 { string_value = 1 } }
    return pb.string(1, key) + pb.length_delimited(2, pb.string(1, value))


def _pb_point(
    value: Number, time_ns: int, start_ns: int | None, attributes: tuple[tuple[str, str], ...]
) -> bytes:
    # NumberDataPoint { start_time_unix_nano = 2; time_unix_nano = 3; as_double = 4;
    #                   as_int = 6; repeated KeyValue attributes = 7 }
    point = b"" if start_ns is None else pb.fixed64(2, start_ns)
    point += pb.fixed64(3, time_ns)
    point += pb.sfixed64(6, value) if _is_int64(value) else pb.double(4, float(value))
    if attributes:
        point += _pb_point_attributes(attributes)
    return point


_point_attributes: dict[tuple[tuple[str, str], ...], bytes] = {}


def _pb_point_attributes(attributes: tuple[tuple[str, str], ...]) -> bytes:
    # A metric's attributes never change: written once (one entry per entry of the table).
    encoded = _point_attributes.get(attributes)
    if encoded is None:
        encoded = b"".join(pb.length_delimited(7, _pb_key_value(k, v)) for k, v in attributes)
        _point_attributes[attributes] = encoded
    return encoded


class _ProtobufWriter:
    """Writes requests as protobuf; the parts that never change are written once."""

    def __init__(self) -> None:
        self._metric_heads: dict[str, bytes] = {}
        # ScopeMetrics.scope = 1 { name = 1; version = 2 }
        scope = pb.string(1, SCOPE_NAME) + pb.string(2, __version__)
        self._scope = pb.length_delimited(1, scope)

    def resource(self, attributes: list[tuple[str, str]]) -> bytes:
        # ResourceMetrics.resource = 1 { repeated KeyValue attributes = 1 }
        body = b"".join(pb.length_delimited(1, _pb_key_value(k, v)) for k, v in attributes)
        return pb.length_delimited(1, body)

    def _head(self, metric: Metric) -> bytes:
        head = self._metric_heads.get(metric.otlp_name)
        if head is None:
            # Metric { name = 1; description = 2; unit = 3 }
            head = pb.string(1, metric.otlp_name) + pb.string(2, metric.description)
            head = self._metric_heads[metric.otlp_name] = head + pb.string(3, metric.unit)
        return head

    def request(self, resource: bytes, metrics: list[tuple[Metric, list[bytes]]]) -> bytes:
        encoded = b""
        for metric, points in metrics:
            data = b"".join(pb.length_delimited(1, point) for point in points)
            if metric.kind == GAUGE:
                encoded_metric = self._head(metric) + pb.length_delimited(5, data)  # gauge = 5
            else:
                # Sum { data_points = 1; aggregation_temporality = 2; is_monotonic = 3 }
                data += pb.varint_field(2, AGGREGATION_TEMPORALITY_CUMULATIVE)
                if metric.kind == COUNTER:
                    data += pb.varint_field(3, 1)
                encoded_metric = self._head(metric) + pb.length_delimited(7, data)  # sum = 7
            encoded += pb.length_delimited(2, encoded_metric)  # ScopeMetrics.metrics = 2
        scope_metrics = pb.length_delimited(2, self._scope + encoded)
        # ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1 }
        return pb.length_delimited(1, resource + scope_metrics)


# -- JSON --------------------------------------------------------------------------------------


def _json_attributes(attributes) -> list[dict]:
    return [{"key": key, "value": {"stringValue": value}} for key, value in attributes]


def _json_point(
    value: Number, time_ns: int, start_ns: int | None, attributes: tuple[tuple[str, str], ...]
) -> dict:
    point: dict[str, object] = {}
    if start_ns is not None:
        point["startTimeUnixNano"] = str(start_ns)
    point["timeUnixNano"] = str(time_ns)
    if _is_int64(value):
        point["asInt"] = str(value)
    else:
        number = float(value)
        # JSON has no NaN or infinity; proto3 JSON writes them as these strings.
        if math.isnan(number):
            point["asDouble"] = "NaN"
        elif math.isinf(number):
            point["asDouble"] = "Infinity" if number > 0 else "-Infinity"
        else:
            point["asDouble"] = number
    if attributes:
        point["attributes"] = _json_attributes(attributes)
    return point


class _JsonWriter:
    """Writes requests as OTLP JSON."""

    def __init__(self) -> None:
        import json  # noqa: PLC0415 - only an agent pushing JSON pays for the module

        self._dumps = json.dumps

    def resource(self, attributes: list[tuple[str, str]]) -> dict:
        return {"attributes": _json_attributes(attributes)}

    def request(self, resource: dict, metrics: list[tuple[Metric, list[dict]]]) -> bytes:
        encoded = []
        for metric, points in metrics:
            entry: dict[str, object] = {
                "name": metric.otlp_name,
                "description": metric.description,
                "unit": metric.unit,
            }
            if metric.kind == GAUGE:
                entry["gauge"] = {"dataPoints": points}
            else:
                data: dict[str, object] = {
                    "dataPoints": points,
                    "aggregationTemporality": AGGREGATION_TEMPORALITY_CUMULATIVE,
                }
                if metric.kind == COUNTER:
                    data["isMonotonic"] = True
                entry["sum"] = data
            encoded.append(entry)
        request = {
            "resourceMetrics": [
                {
                    "resource": resource,
                    "scopeMetrics": [
                        {
                            "scope": {"name": SCOPE_NAME, "version": __version__},
                            "metrics": encoded,
                        }
                    ],
                }
            ]
        }
        return self._dumps(request, separators=(",", ":")).encode("utf-8")


class Encoder:
    """Request bodies for one agent's samples in one encoding, with its series' start times."""

    def __init__(self, encoding: str, start_time: float) -> None:
        self.encoding = encoding
        self.content_type = CONTENT_TYPES[encoding]
        self._writer = _JsonWriter() if encoding == JSON else _ProtobufWriter()
        self._point = _json_point if encoding == JSON else _pb_point
        self.starts = StartTimes(_nanoseconds(start_time))

    def resource(self, attributes: list[tuple[str, str]]):
        """The resource, prepared once for every request that carries it."""
        return self._writer.resource(attributes)

    def encode(self, sample: Sample, resource, dropped: int) -> bytes:
        """The request body for one sample."""
        time_ns = _nanoseconds(sample.wall_time)
        metrics = []
        for group in families(sample, dropped):
            points = []
            for metric, value in group:
                start_ns = None if metric.kind == GAUGE else self.starts.of(metric, value, time_ns)
                points.append(self._point(value, time_ns, start_ns, metric.attributes))
            metrics.append((group[0][0], points))
        return self._writer.request(resource, metrics)


def _nanoseconds(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


# -- the answer --------------------------------------------------------------------------------


def rejected_points(body: bytes, content_type: str | None, sent: str) -> int | None:
    """How many points a 2xx ExportMetricsServiceResponse says were rejected.

    0 for an empty body or a response without a partial success; None when the body is not
    the response OTLP promises (the caller reports it as a bad response). The answer is read
    in the encoding its Content-Type names (OTLP servers answer in the request's), else as
    what it looks like.
    """
    if not body:
        return 0
    kind = (content_type or "").lower()
    if "json" in kind:
        return _rejected_json(body)
    if "protobuf" in kind:
        return _rejected_protobuf(body)
    # No telling Content-Type: a JSON object starts with "{", which no protobuf response can
    # (it would be a group, a wire type OTLP never uses); one with blanks before it is tried
    # as JSON when it is no protobuf response (a protobuf one may start with a newline byte).
    if sent == JSON or body[:1] == b"{":
        return _rejected_json(body)
    rejected = _rejected_protobuf(body)
    if rejected is None and body.strip()[:1] == b"{":
        return _rejected_json(body)
    return rejected


def _rejected_protobuf(body: bytes) -> int | None:
    rejected = 0
    try:
        for number, wire_type, value in pb.fields(body):
            if number != 1:
                continue
            if wire_type != pb.LENGTH_DELIMITED:
                return None
            # ExportMetricsPartialSuccess { int64 rejected_data_points = 1; error_message = 2 }
            for inner_number, inner_type, inner_value in pb.fields(value):
                if inner_number != 1:
                    continue
                if inner_type != pb.VARINT:
                    return None
                rejected = pb.as_int64(inner_value)
    except pb.MalformedMessage:
        return None
    return rejected if rejected >= 0 else None


def _rejected_json(body: bytes) -> int | None:
    import json  # noqa: PLC0415 - only an answer in JSON pays for the module

    if not body.strip():
        return 0
    try:
        response = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: a deeply nested answer
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
