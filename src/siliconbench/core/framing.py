"""Protobuf's wire encoding for the few fields written by hand: one helper for both sides of the wire.

A protobuf message is the concatenation of its fields, and a repeated field's elements are fields of
the same tag in order, so bytes built field by field parse as the message built in Python. The agent
encodes each item of a batch once as it is added (agent/batcher.py: 2.1 us for a 64-chunk request
record, where appending it to a `Batch` message cost 3.2 us and sealing 2,000 of them took 4-18 ms on
the event loop) and frames a spooled batch as an `AgentMessage` without parsing it; the collector tells
a batch from the other messages by its first byte (collector/budget.py). Tags are computed from the
descriptors, never written as numbers: a field number of 16 or more takes two bytes.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from siliconbench.core.wire import pb

_LENGTH_DELIMITED = {FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES}
_VARINT = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
           FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_ENUM}


def varint(n: int) -> bytes:
    """A non-negative integer as protobuf's base-128 varint."""
    if n < 0:
        raise ValueError(f"a varint here is never negative, not {n}")
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(message: type[Message], field: str) -> bytes:
    """The key of `message`'s (non-packed) `field`: its number and wire type."""
    descriptor = message.DESCRIPTOR.fields_by_name[field]
    if descriptor.type in _LENGTH_DELIMITED:
        wire_type = 2
    elif descriptor.type in _VARINT:
        wire_type = 0
    else:
        raise ValueError(f"{message.DESCRIPTOR.name}.{field}: only varint and length-delimited fields are framed here")
    return varint(descriptor.number << 3 | wire_type)


def delimited(key: bytes, data: bytes) -> bytes:
    """One length-delimited field (a message or a string) after its key."""
    return key + varint(len(data)) + data


BATCH_TAG = tag(pb.AgentMessage, "batch")  # an AgentMessage holds one field: a batch starts with this
