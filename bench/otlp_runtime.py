"""The alternative to dynostat's own protobuf writer, measured by bench_push.py: the same OTLP
requests built with the official message classes (opentelemetry-proto on the protobuf runtime).

``install()`` swaps it into the agent's OTLP encoder before the agent starts, so the benchmark
can run the real agent with either and compare what each costs. Both write the same bytes: the
tests hold every body dynostat writes to what the runtime serializes from it.
"""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from dynostat import __version__
from dynostat.push import otlp
from dynostat.push.metrics import COUNTER, GAUGE, families


def _resource(self, attributes):
    return [KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in attributes]


def _encode(self, sample, resource, dropped):
    time_ns = otlp._nanoseconds(sample.wall_time)
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(resource)
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = otlp.SCOPE_NAME
    scope_metrics.scope.version = __version__
    for group in families(sample, dropped):
        first = group[0][0]
        metric = scope_metrics.metrics.add(
            name=first.otlp_name, description=first.description, unit=first.unit
        )
        if first.kind == GAUGE:
            data = metric.gauge
        else:
            data = metric.sum
            data.aggregation_temporality = otlp.AGGREGATION_TEMPORALITY_CUMULATIVE
            data.is_monotonic = first.kind == COUNTER
        for entry, value in group:
            point = data.data_points.add(time_unix_nano=time_ns)
            if first.kind != GAUGE:
                point.start_time_unix_nano = self.starts.of(entry, value, time_ns)
            if otlp._is_int64(value):
                point.as_int = value
            else:
                point.as_double = float(value)
            for key, text in entry.attributes:
                point.attributes.add(key=key, value=AnyValue(string_value=text))
    return request.SerializeToString()


def install() -> None:
    """Make every protobuf OTLP encoder of this process use the protobuf runtime."""
    original_init = otlp.Encoder.__init__

    def __init__(self, encoding, start_time):
        original_init(self, encoding, start_time)
        if encoding == otlp.PROTOBUF:
            self.resource = _resource.__get__(self)
            self.encode = _encode.__get__(self)

    otlp.Encoder.__init__ = __init__
