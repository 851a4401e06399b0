"""SSE decoding as the WHATWG event-stream rules and vLLM's streams require."""

import pytest

from siliconbench.agent.errors import MalformedChunk
from siliconbench.agent.sse import MAX_EVENT_BYTES, SseDecoder


def feed_all(pieces: list[bytes]) -> list[bytes]:
    decoder = SseDecoder()
    return [payload for piece in pieces for payload in decoder.feed(piece)]


def test_several_events_in_one_read_are_all_returned_in_order():
    assert feed_all([b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n']) == [b'{"a":1}', b'{"a":2}', b"[DONE]"]


def test_event_split_across_reads_is_returned_once_complete():
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"te') == []
    assert decoder.pending()
    assert decoder.feed(b'xt":"x"}\n') == []
    assert decoder.feed(b"\n") == [b'{"text":"x"}']
    assert not decoder.pending()


def test_every_split_point_yields_the_same_events():
    stream = b'data: {"a":1}\r\n\r\n: ping\r\n\r\ndata: {"a":2}\n\ndata: [DONE]\r\n\r\n'
    for cut in range(1, len(stream)):
        assert feed_all([stream[:cut], stream[cut:]]) == [b'{"a":1}', b'{"a":2}', b"[DONE]"], cut


def test_comment_lines_are_ignored():
    assert feed_all([b": keep-alive\n\ndata: x\n\n:ping\n\n"]) == [b"x"]


def test_crlf_and_lone_cr_line_endings_are_accepted():
    assert feed_all([b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]) == [b"a", b"b", b"c"]


def test_crlf_split_between_reads_does_not_end_an_event_early():
    assert feed_all([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [b"a\nb"]


def test_multiple_data_lines_are_joined_with_newline():
    assert feed_all([b"data: a\ndata: b\n\n"]) == [b"a\nb"]


def test_data_without_space_and_other_fields():
    assert feed_all([b"event: message\nid: 7\nretry: 10\ndata:{\"a\":1}\n\n"]) == [b'{"a":1}']


def test_blank_lines_without_data_dispatch_nothing():
    assert feed_all([b"\n\n\n"]) == []


def test_a_byte_order_mark_opening_the_stream_is_skipped_wherever_the_read_splits_it():
    stream = b'\xef\xbb\xbfdata: {"a":1}\n\ndata: [DONE]\n\n'
    for cut in range(0, 6):
        assert feed_all([stream[:cut], stream[cut:]]) == [b'{"a":1}', b"[DONE]"], cut
    assert feed_all([b"\xef\xbb", b"\xbf", b"data: x\n\n"]) == [b"x"]


def test_a_byte_order_mark_later_in_the_stream_is_data():
    assert feed_all([b"data: a\n\n", b"\xef\xbb\xbfdata: b\n\n"]) == [b"a"]  # a field named BOM+data: ignored


def test_unterminated_event_at_stream_end_is_reported_pending():
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n') == []
    assert decoder.pending()


def in_reads(stream: bytes, size: int = 8192) -> list[bytes]:
    return [stream[i:i + size] for i in range(0, len(stream), size)]


def test_a_line_up_to_the_limit_arriving_in_many_reads_is_one_payload():
    payload = b"x" * (MAX_EVENT_BYTES - len(b"data: "))
    assert feed_all(in_reads(b"data: " + payload + b"\n\n")) == [payload]


def test_a_line_past_the_limit_is_malformed_before_its_end_arrives():
    decoder = SseDecoder()
    with pytest.raises(MalformedChunk, match="SSE line is longer than"):
        for piece in in_reads(b"data: " + b"x" * MAX_EVENT_BYTES):
            decoder.feed(piece)


def test_an_event_of_many_data_lines_past_the_limit_is_malformed():
    line = b"data: " + b"x" * 1000 + b"\n"
    with pytest.raises(MalformedChunk, match="event's data is longer than"):
        feed_all(in_reads(line * (MAX_EVENT_BYTES // 1000 + 1)))


@pytest.mark.parametrize("line", [b"data:\n", b"data\n", b"data: \n"])
def test_an_endless_run_of_empty_data_lines_is_malformed_within_the_event_bound(line):
    decoder = SseDecoder()
    fed = 0
    with pytest.raises(MalformedChunk, match="event's data is longer than"):
        for piece in in_reads(line * (2 * MAX_EVENT_BYTES // len(line))):
            fed += len(piece)
            decoder.feed(piece)
    lines_to_the_bound = MAX_EVENT_BYTES // len(line.rstrip(b"\n")) + 1
    assert fed <= lines_to_the_bound * len(line) + 8192  # within one read of the line past the bound


def test_empty_data_lines_up_to_the_bound_are_one_event_of_newlines():
    lines = MAX_EVENT_BYTES // len(b"data:")
    assert feed_all(in_reads(b"data:\n" * lines + b"\n")) == [b"\n" * (lines - 1)]
