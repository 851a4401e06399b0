"""The hand-written framing against protobuf's own encoder and parser: bytes built field by field parse as
the message built in Python, for every field kind framed here and for field numbers of 16 and more."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from siliconbench.core.framing import BATCH_TAG, delimited, tag, varint
from siliconbench.core.wire import pb


@pytest.mark.parametrize("n", [1, 127, 128, 300, 16383, 16384, 2**32, 2**63 - 1])
def test_a_varint_is_protobufs(n):
    assert pb.Offer(bytes=n).SerializeToString() == tag(pb.Offer, "bytes") + varint(n)


def test_zero_is_one_byte():
    assert varint(0) == b"\x00"


def test_a_varint_is_never_negative():
    with pytest.raises(ValueError, match="never negative"):
        varint(-1)


def test_every_scalar_and_string_field_of_a_request_record_frames_as_protobuf_does():
    framed = 0
    for field in pb.RequestRecord.DESCRIPTOR.fields:
        if field.is_repeated:
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            expected = delimited(tag(pb.RequestRecord, field.name), b"x")
            value: object = "x"
        elif field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
                            FieldDescriptor.TYPE_INT32):
            expected = tag(pb.RequestRecord, field.name) + varint(5)
            value = 5
        else:
            continue
        assert pb.RequestRecord(**{field.name: value}).SerializeToString() == expected, field.name
        framed += 1
    assert framed > 10 and max(f.number for f in pb.RequestRecord.DESCRIPTOR.fields) >= 16  # two-byte tags too


def test_a_batch_built_field_by_field_parses_as_the_batch_built_in_python():
    run = pb.RunEvent(run_id="r", phase=pb.PHASE_START, time_unix_ns=1)
    requests = [pb.RequestRecord(run_id="r", request_id=f"r/0/{i}", chunk_offset_ns=[1, 2, 3]) for i in range(3)]
    parts = [tag(pb.Batch, "seq") + varint(300), delimited(tag(pb.Batch, "batch_id"), b"a/b/300"),
             delimited(tag(pb.Batch, "runs"), run.SerializeToString()),
             *(delimited(tag(pb.Batch, "requests"), r.SerializeToString()) for r in requests)]
    assert pb.Batch.FromString(b"".join(parts)) == pb.Batch(seq=300, batch_id="a/b/300", runs=[run], requests=requests)


def test_a_batch_message_starts_with_the_batch_tag_and_no_other_message_does():
    assert pb.AgentMessage(batch=pb.Batch(seq=1)).SerializeToString().startswith(BATCH_TAG)
    others = [pb.AgentMessage(hello=pb.Hello(agent_id="a")), pb.AgentMessage(offer=pb.Offer(seq=1, bytes=2)),
              pb.AgentMessage(progress=pb.RunProgress(run_id="r"))]
    assert not any(m.SerializeToString().startswith(BATCH_TAG) for m in others)
    framed = delimited(BATCH_TAG, pb.Batch(seq=9, batch_id="x").SerializeToString())
    assert pb.AgentMessage.FromString(framed).batch == pb.Batch(seq=9, batch_id="x")


def test_fields_framed_otherwise_are_refused_not_miscoded():
    doubles = [f.name for f in pb.DeviceSample.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_DOUBLE]
    fields = doubles or [f.name for f in pb.ServerMetric.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_DOUBLE]
    message = pb.DeviceSample if doubles else pb.ServerMetric
    with pytest.raises(ValueError, match="only varint and length-delimited"):
        tag(message, fields[0])
