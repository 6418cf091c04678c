"""The protobuf wire format, as much of it as an OTLP metrics request and its answer use.

A push sends one ``ExportMetricsServiceRequest`` of a few hundred bytes per tick and reads
one ``ExportMetricsServiceResponse``. The protobuf runtime with the OTLP message classes would
cost the agent several megabytes of memory for that (bench/bench_push.py measures both), and
the slug a compiled wheel per Python version; these few functions write the same bytes
(https://protobuf.dev/programming-guides/encoding/). The tests parse every body they produce
with the official opentelemetry-proto classes, strictly.

Writing: fields are written in field-number order as the runtime writes them, strings are
UTF-8, 64-bit times are ``fixed64``, doubles IEEE 754 little-endian, integer values
``sfixed64``. Reading: ``fields`` walks a message and refuses anything malformed (a
truncated value, a length past the end, a group or an unknown wire type) with
``MalformedMessage``; unknown field numbers are skipped, as proto3 readers do.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_SFIXED64 = struct.Struct("<q")
# A varint is at most ten bytes: 64 bits in groups of seven.
MAX_VARINT_BYTES = 10
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class MalformedMessage(ValueError):
    """Bytes that are not a protobuf message."""


# Most varints a request holds (tags, short lengths) are one byte: looked up, not built.
_ONE_BYTE = tuple(bytes((value,)) for value in range(0x80))


def varint(value: int) -> bytes:
    """``value`` (0 to 2**64 - 1) as a base-128 varint."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    key = number << 3 | wire_type
    return _ONE_BYTE[key] if key < 0x80 else varint(key)


def length_delimited(number: int, payload: bytes) -> bytes:
    """A submessage, string or bytes field."""
    return tag(number, LENGTH_DELIMITED) + varint(len(payload)) + payload


def string(number: int, text: str) -> bytes:
    return length_delimited(number, text.encode("utf-8"))


def fixed64(number: int, value: int) -> bytes:
    return tag(number, FIXED64) + _FIXED64.pack(value)


def sfixed64(number: int, value: int) -> bytes:
    return tag(number, FIXED64) + _SFIXED64.pack(value)


def double(number: int, value: float) -> bytes:
    return tag(number, FIXED64) + _DOUBLE.pack(value)


def varint_field(number: int, value: int) -> bytes:
    """An enum, bool or non-negative integer field."""
    return tag(number, VARINT) + varint(value)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it."""
    value = 0
    for index in range(MAX_VARINT_BYTES):
        if position >= len(data):
            raise MalformedMessage("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, position
    raise MalformedMessage("varint longer than ten bytes")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` of each field of one message, in order.

    A varint's value is its unsigned integer, a length-delimited field's its bytes, a fixed
    field's its unsigned little-endian integer.
    """
    position = 0
    end = len(data)
    while position < end:
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 0x07
        if number == 0:
            raise MalformedMessage("field number 0")
        if wire_type == VARINT:
            value, position = _read_varint(data, position)
            yield number, wire_type, value
        elif wire_type == LENGTH_DELIMITED:
            length, position = _read_varint(data, position)
            if length > end - position:
                raise MalformedMessage("length past the end")
            yield number, wire_type, data[position : position + length]
            position += length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if size > end - position:
                raise MalformedMessage("truncated fixed field")
            yield number, wire_type, int.from_bytes(data[position : position + size], "little")
            position += size
        else:
            raise MalformedMessage(f"wire type {wire_type}")


def as_int64(value: int) -> int:
    """An ``int64`` field's varint as the signed number it encodes."""
    return value - 2**64 if value > INT64_MAX else value
