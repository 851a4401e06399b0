"""bench/wire.py rebuilds HTTP streaming exchanges from a pcap: here from captures built by hand, segment
by segment, so each test knows exactly which bytes crossed the wire when."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from wire import CaptureError, read_exchanges

SERVER = 8000
CLIENT = 40000
MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000  # capture times: T0 + ms offsets


def chat_event(text: str | None, role: bool = False) -> bytes:
    delta = '{"role":"assistant","content":""}' if role else f'{{"content":"{text}"}}'
    return (f'data: {{"id":"chatcmpl-7","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{delta},'
            f'"finish_reason":null}}]}}\n\n').encode()


USAGE = b'data: {"id":"chatcmpl-7","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
DONE = b"data: [DONE]\n\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def request(request_id: str, body: bytes = b'{"stream":true}') -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: {request_id}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Wire:
    """Builds a pcap: TCP segments between one client port and the server, with explicit sequence
    numbers (relative to each side's ISN) and capture times."""

    def __init__(self, ipv6: bool = False, ns: bool = True) -> None:
        self.ipv6 = ipv6
        self.ns = ns
        self.records: list[bytes] = []
        self.isn = {True: 1000, False: 5_000_000}  # client's, server's

    def syn(self, t_ms: float, port: int = CLIENT) -> None:
        self._packet(t_ms, port, True, -1, b"", 0x02)
        self._packet(t_ms, port, False, -1, b"", 0x12)

    def send(self, t_ms: float, to_server: bool, seq: int, payload: bytes, port: int = CLIENT,
             flags: int = 0x18) -> None:
        self._packet(t_ms, port, to_server, seq, payload, flags)

    def _packet(self, t_ms: float, port: int, to_server: bool, seq: int, payload: bytes, flags: int) -> None:
        sport, dport = (port, SERVER) if to_server else (SERVER, port)
        tcp = struct.pack("!HHIIHHHH", sport, dport, (self.isn[to_server] + 1 + seq) & 0xFFFFFFFF, 0,
                          (5 << 12) | flags, 65535, 0, 0) + payload
        if self.ipv6:
            ip = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x01" + tcp
            frame = bytes(12) + b"\x86\xdd" + ip
        else:
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, b"\x7f\0\0\1",
                             b"\x7f\0\0\1") + tcp
            frame = bytes(12) + b"\x08\x00" + ip
        t_ns = T0 + round(t_ms * MS)
        frac = t_ns % 1_000_000_000 if self.ns else t_ns % 1_000_000_000 // 1000
        self.records.append(struct.pack("<IIII", t_ns // 1_000_000_000, frac, len(frame), len(frame)) + frame)

    def write(self, path: Path) -> Path:
        magic = 0xA1B23C4D if self.ns else 0xA1B2C3D4
        path.write_bytes(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, 1) + b"".join(self.records))
        return path


def at(t_ms: float) -> int:
    return T0 + round(t_ms * MS)


def test_keep_alive_exchanges_have_the_times_of_their_last_request_byte_and_each_content_event(tmp_path):
    wire = Wire()
    wire.syn(0)
    first, second = request("a"), request("b")
    wire.send(1, True, 0, first)
    body1 = HEAD + chunk(chat_event(None, role=True) + chat_event("x")) + chunk(chat_event("y")) + chunk(DONE)
    body1 += b"0\r\n\r\n"
    cut1 = len(HEAD) + len(chunk(chat_event(None, role=True) + chat_event("x")))
    wire.send(41, False, 0, body1[:cut1])
    wire.send(51, False, cut1, body1[cut1:])
    wire.send(60, True, len(first), second)
    body2 = HEAD + chunk(chat_event("z")) + chunk(USAGE) + chunk(DONE) + b"0\r\n\r\n"
    wire.send(100, False, len(body1), body2)

    one, two = read_exchanges(wire.write(tmp_path / "c.pcap"), SERVER)

    assert (one.connection, one.order, one.request_id, one.path) == (0, 0, "a", "/v1/chat/completions")
    assert (two.connection, two.order, two.request_id) == (0, 1, "b")
    assert (one.sent_ns, one.status, one.response_id) == (at(1), 200, "chatcmpl-7")
    assert [e.first_ns for e in one.events] == [at(41), at(51)]  # the role-only chunk is not content
    assert one.ttft_ns == 40 * MS and one.end_ns == at(51)
    assert two.sent_ns == at(60) and [e.first_ns for e in two.events] == [at(100)]  # usage is not content
    assert two.end_ns == at(100)


def test_a_request_and_an_event_split_across_segments_take_the_times_of_their_own_bytes(tmp_path):
    wire = Wire()
    wire.syn(0)
    req = request("a")
    wire.send(1, True, 0, req[:10])
    wire.send(2, True, 10, req[10:])
    event = chat_event("x")
    body = HEAD + chunk(event) + chunk(DONE) + b"0\r\n\r\n"
    split = len(HEAD) + 4 + 20  # inside the event's JSON
    wire.send(40, False, 0, body[:split])
    wire.send(45, False, split, body[split:])

    [ex] = read_exchanges(wire.write(tmp_path / "c.pcap"), SERVER)

    assert (ex.first_byte_ns, ex.sent_ns) == (at(1), at(2))
    assert [(e.first_ns, e.last_ns) for e in ex.events] == [(at(40), at(45))]


def test_retransmitted_and_overlapping_segments_add_only_new_bytes_at_their_first_capture(tmp_path):
    wire = Wire()
    wire.syn(0)
    wire.send(1, True, 0, request("a"))
    events = [chat_event(t) for t in "abc"]
    body = HEAD + b"".join(chunk(e) for e in events) + chunk(DONE) + b"0\r\n\r\n"
    e1 = len(HEAD) + len(chunk(events[0]))
    e2 = e1 + len(chunk(events[1]))
    wire.send(40, False, 0, body[:e1])
    wire.send(50, False, e1, body[e1:e2])
    wire.send(55, False, 0, body[:e2])            # a retransmission of both: nothing new
    wire.send(60, False, e1 + 5, body[e1 + 5:])   # overlaps the second event's end, then the third and the rest

    [ex] = read_exchanges(wire.write(tmp_path / "c.pcap"), SERVER)

    assert [e.first_ns for e in ex.events] == [at(40), at(50), at(60)]
    assert ex.end_ns == at(60)


def test_bytes_after_a_gap_are_readable_only_when_the_gap_is_filled(tmp_path):
    wire = Wire()
    wire.syn(0)
    wire.send(1, True, 0, request("a"))
    events = [chat_event(t) for t in "ab"]
    body = HEAD + b"".join(chunk(e) for e in events) + chunk(DONE) + b"0\r\n\r\n"
    e1 = len(HEAD) + len(chunk(events[0]))
    wire.send(40, False, e1, body[e1:])  # arrives first: the segment before it was lost
    wire.send(70, False, 0, body[:e1])   # the retransmission fills the gap

    [ex] = read_exchanges(wire.write(tmp_path / "c.pcap"), SERVER)

    assert [e.first_ns for e in ex.events] == [at(70), at(70)]


def test_connections_are_told_apart_by_port_and_by_a_new_syn_on_a_reused_port(tmp_path):
    wire = Wire(ipv6=True, ns=False)
    body = HEAD + chunk(chat_event("x")) + b"0\r\n\r\n"
    for t, port, rid in ((0, CLIENT, "a"), (1, CLIENT + 1, "b")):
        wire.syn(t, port)
        wire.send(t + 1, True, 0, request(rid), port)
        wire.send(t + 40, False, 0, body, port)
    wire.send(50, True, len(request("a")), b"", CLIENT, flags=0x11)  # FIN
    wire.syn(60, CLIENT)
    wire.send(61, True, 0, request("c"))
    wire.send(100, False, 0, body)

    found = read_exchanges(wire.write(tmp_path / "c.pcap"), SERVER)

    assert [(e.connection, e.client_port, e.request_id, e.order) for e in found] == [
        (0, CLIENT, "a", 0), (1, CLIENT + 1, "b", 0), (2, CLIENT, "c", 0)]
    assert [e.ttft_ns for e in found] == [39 * MS, 39 * MS, 39 * MS]  # microsecond pcap, IPv6


def test_a_response_cut_off_before_its_end_keeps_the_events_that_arrived(tmp_path):
    wire = Wire()
    wire.syn(0)
    wire.send(1, True, 0, request("a"))
    wire.send(40, False, 0, HEAD + chunk(chat_event("x")) + chunk(chat_event("y"))[:9])

    [ex] = read_exchanges(wire.write(tmp_path / "c.pcap"), SERVER)

    assert ex.status == 200 and ex.end_ns == 0 and [e.first_ns for e in ex.events] == [at(40)]


def test_a_pcapng_file_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "c.pcapng"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(CaptureError, match="pcapng"):
        read_exchanges(path, SERVER)
