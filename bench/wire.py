"""What the wire says: HTTP/1.1 streaming exchanges rebuilt from a packet capture, with kernel timestamps.

`read_exchanges(pcap, server_port)` reads a classic pcap file (microsecond or nanosecond timestamps, either
byte order; link types Ethernet, BSD loopback, Linux cooked v1/v2 and raw IP; IPv4 and IPv6), puts each
TCP connection's two byte streams back in order (by sequence number: segments split anywhere, retransmitted,
overlapping or out of order), and parses them as HTTP/1.1: several requests per connection (keep-alive),
`Content-Length`, chunked and close-delimited bodies, and Server-Sent Events in the response body.

A byte's time is when it became readable in order: the capture time of the segment that carried it, or of
a later segment that filled a gap before it (a receiver cannot read past a gap). Times are the capture's
own (the kernel's wall clock, `time.time_ns()`'s clock), in ns.

Per exchange: the request's id header and body, the time of its first and last byte, and of the first and last byte of every SSE
event whose chunk carries content (text, reasoning or tool calls, as the agent counts them: a chat stream's
role-only first chunk, usage-only chunks and `[DONE]` are not content), the response id of the first data
event, and the time of the response's last byte. No dependency beyond the standard library.
"""

from __future__ import annotations

import json
import struct
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
               b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}  # byte order, ns per fraction unit
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_ETHERNET, _NULL, _RAW, _RAW_OPENBSD, _SLL, _SLL2, _IPV4, _IPV6 = 1, 0, 101, 12, 113, 276, 228, 229
_TCP = 6
_SYN, _FIN = 0x02, 0x01
_IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options: skipped to reach TCP


class CaptureError(Exception):
    """A capture this module cannot read (the message says what is wrong with it)."""


@dataclass(slots=True)
class Segment:
    """One TCP segment: its capture time, endpoints, sequence number, flags and payload."""

    t_ns: int
    src: tuple[bytes, int]
    dst: tuple[bytes, int]
    seq: int
    flags: int
    payload: bytes


@dataclass(slots=True)
class Event:
    """One content-bearing SSE event: the capture times of its first and last byte."""

    first_ns: int
    last_ns: int


@dataclass(slots=True)
class Exchange:
    """One request and its response on a connection, as the wire saw them."""

    connection: int           # connections numbered in the order their first segment was captured
    order: int                # this exchange's position on its connection (0: the first request)
    client_port: int
    method: str
    path: str
    request_id: str | None    # the X-Request-Id header, if the client sent one
    body: bytes               # the request's body
    first_byte_ns: int        # the request's first byte
    sent_ns: int              # the request's last byte
    status: int = 0           # 0: no complete response head
    response_id: str = ""     # `id` of the first data event (vLLM's and the simulator's chatcmpl-/cmpl- id)
    events: list[Event] = field(default_factory=list)
    end_ns: int = 0           # the response's last byte (0: the response did not end)

    @property
    def ttft_ns(self) -> int | None:
        """Last request byte out to the first content event's first byte in."""
        return self.events[0].first_ns - self.sent_ns if self.events else None


# --- pcap -------------------------------------------------------------------------------------------
def read_segments(path: str | Path) -> Iterator[Segment]:
    """Every TCP segment in a pcap file, in capture order. Raises CaptureError for a file that is not a
    classic pcap, a link type it does not know, or packets cut short by the snapshot length."""
    data = Path(path).read_bytes()
    if data[:4] == _PCAPNG_MAGIC:
        raise CaptureError(f"{path} is pcapng: write classic pcap (tcpdump -w does by default)")
    if len(data) < 24 or data[:4] not in _PCAP_MAGIC:
        raise CaptureError(f"{path} is not a pcap file (magic {data[:4].hex()})")
    order, ns_per_unit = _PCAP_MAGIC[data[:4]]
    link = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, origlen = record.unpack_from(data, pos)
        pos += 16
        if caplen < origlen:
            raise CaptureError(f"{path}: a packet was cut to {caplen} of {origlen} bytes: capture with -s 0")
        frame = data[pos:pos + caplen]
        pos += caplen
        if len(frame) < caplen:
            break  # the capture was stopped mid-write: the last record is incomplete
        segment = _segment(sec * 1_000_000_000 + frac * ns_per_unit, _ip_packet(frame, link, path), path)
        if segment is not None:
            yield segment


def _ip_packet(frame: bytes, link: int, path: str | Path) -> bytes:
    if link == _ETHERNET:
        kind, start = struct.unpack_from("!H", frame, 12)[0], 14
        while kind in (0x8100, 0x88A8):  # VLAN tags
            kind, start = struct.unpack_from("!H", frame, start + 2)[0], start + 4
        return frame[start:] if kind in (0x0800, 0x86DD) else b""
    if link == _NULL:
        return frame[4:]  # a host-order address family; the IP version nibble says the rest
    if link in (_RAW, _RAW_OPENBSD, _IPV4, _IPV6):
        return frame
    if link == _SLL:
        return frame[16:] if struct.unpack_from("!H", frame, 14)[0] in (0x0800, 0x86DD) else b""
    if link == _SLL2:
        return frame[20:] if struct.unpack_from("!H", frame, 0)[0] in (0x0800, 0x86DD) else b""
    raise CaptureError(f"{path}: link type {link} is not one this reader knows (Ethernet, loopback, Linux cooked, "
                       "raw IP): capture on the loopback interface (-i lo)")


def _segment(t_ns: int, packet: bytes, path: str | Path) -> Segment | None:
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        header = (packet[0] & 0x0F) * 4
        total = struct.unpack_from("!H", packet, 2)[0] or len(packet)  # 0: a segmentation-offload super-packet
        if packet[9] != _TCP or struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:  # not TCP, or a fragment
            return None
        src, dst, tcp = packet[12:16], packet[16:20], packet[header:total]
    elif version == 6:
        next_header, total = packet[6], 40 + struct.unpack_from("!H", packet, 4)[0]
        start = 40
        while next_header in _IPV6_EXTENSIONS:
            next_header, start = packet[start], start + (packet[start + 1] + 1) * 8
        if next_header != _TCP:
            return None
        src, dst, tcp = packet[8:24], packet[24:40], packet[start:total]
    else:
        return None
    sport, dport, seq, _, offset_flags = struct.unpack_from("!HHIIH", tcp, 0)
    return Segment(t_ns, (src, sport), (dst, dport), seq, offset_flags & 0x3F, tcp[(offset_flags >> 12) * 4:])


# --- TCP reassembly ---------------------------------------------------------------------------------
class ByteStream:
    """One direction of a TCP connection, in order, with the time each byte became readable."""

    __slots__ = ("data", "_ends", "_times", "_base", "_pending")

    def __init__(self) -> None:
        self.data = bytearray()
        self._ends: list[int] = []   # delivery i covers data[_ends[i-1]:_ends[i]], readable at _times[i]
        self._times: list[int] = []
        self._base: int | None = None  # sequence number of data[0]
        self._pending: dict[int, bytes] = {}  # out-of-order payloads by stream offset

    def add(self, segment: Segment) -> None:
        if segment.flags & _SYN:
            self._base = (segment.seq + 1) & 0xFFFFFFFF
        if not segment.payload:
            return
        if self._base is None:  # the capture began mid-connection: start at the first payload seen
            self._base = segment.seq
        offset = (segment.seq - self._base) & 0xFFFFFFFF
        if offset >= 1 << 31:
            return  # before the stream's start: a retransmission of bytes already read
        have = len(self.data)
        if offset > have:  # a gap before it: readable only once the gap is filled
            if len(segment.payload) > len(self._pending.get(offset, b"")):
                self._pending[offset] = segment.payload
            return
        self._deliver(segment.payload, offset, segment.t_ns)
        while self._pending:
            ready = [o for o in self._pending if o <= len(self.data)]
            if not ready:
                break
            for o in sorted(ready):
                self._deliver(self._pending.pop(o), o, segment.t_ns)

    def _deliver(self, payload: bytes, offset: int, t_ns: int) -> None:
        new = payload[len(self.data) - offset:]  # what a retransmission or an overlap adds, if anything
        if new:
            self.data += new
            self._ends.append(len(self.data))
            self._times.append(t_ns)

    def time_of(self, offset: int) -> int:
        """When the byte at `offset` became readable."""
        return self._times[bisect_right(self._ends, offset)]


@dataclass(slots=True)
class Connection:
    """Both directions of one TCP connection, client side first."""

    number: int
    client_port: int
    to_server: ByteStream = field(default_factory=ByteStream)
    to_client: ByteStream = field(default_factory=ByteStream)
    closed: bool = False


def connections(segments: Iterator[Segment], server_port: int) -> list[Connection]:
    """The connections to `server_port`, in the order their first segment was captured. A SYN on a
    4-tuple whose connection has already carried data or closed starts a new connection (a reused port)."""
    live: dict[tuple, Connection] = {}
    found: list[Connection] = []
    for s in segments:
        if s.dst[1] == server_port:
            key, to_server = (s.src, s.dst), True
        elif s.src[1] == server_port:
            key, to_server = (s.dst, s.src), False
        else:
            continue
        conn = live.get(key)
        if conn is None or (s.flags & _SYN and to_server and (conn.closed or conn.to_server.data)):
            conn = live[key] = Connection(len(found), key[0][1])
            found.append(conn)
        (conn.to_server if to_server else conn.to_client).add(s)
        if s.flags & _FIN:
            conn.closed = True
    return found


# --- HTTP/1.1 and SSE -------------------------------------------------------------------------------
def read_exchanges(path: str | Path, server_port: int) -> list[Exchange]:
    """Every HTTP exchange with `server_port` in the capture, by connection then order on it."""
    found: list[Exchange] = []
    for conn in connections(read_segments(path), server_port):
        found += exchanges_of(conn)
    return found


def exchanges_of(conn: Connection) -> list[Exchange]:
    """The exchanges on one connection: requests in order, each paired with the response in the same
    place in the other direction (HTTP/1.1 answers in order). A request whose bytes did not all arrive
    is left out; a response that did not end has the events that did arrive, and `end_ns == 0`."""
    out: list[Exchange] = []
    up, down = conn.to_server, conn.to_client
    pos = 0
    while (request := _message(up.data, pos, is_request=True)) is not None:
        start_line, headers, spans, end = request
        if end < 0:
            break
        method, _, rest = start_line.partition(" ")
        body = b"".join(bytes(up.data[a:b]) for a, b in spans)
        out.append(Exchange(conn.number, len(out), conn.client_port, method, rest.partition(" ")[0],
                            headers.get("x-request-id"), body, up.time_of(pos), up.time_of(end - 1)))
        pos = end
    pos = 0
    for exchange in out:
        response = _message(down.data, pos, is_request=False, closed=conn.closed)
        if response is None:
            break
        start_line, _, body, end = response
        exchange.status = int(start_line.split(" ", 2)[1])
        _read_events(exchange, down, body)
        if end < 0:
            break
        exchange.end_ns = down.time_of(end - 1)
        pos = end
    return out


def _message(data: bytearray, pos: int, is_request: bool, closed: bool = False
             ) -> tuple[str, dict[str, str], list[tuple[int, int]], int] | None:
    """The HTTP message starting at `pos`: start line, headers (lower-case names), the body's raw
    (start, end) spans in `data` as far as it has arrived, and the offset past the message (-1: the body
    has not all arrived). None when no complete head starts at `pos`. Interim 1xx responses are skipped."""
    while True:
        head_end = data.find(b"\r\n\r\n", pos)
        if head_end < 0:
            return None
        lines = bytes(data[pos:head_end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = head_end + 4
        if is_request or not lines[0].split(" ")[1].startswith("1"):
            break
        pos = start
    if "chunked" in headers.get("transfer-encoding", "").lower():
        spans, end = _chunks(data, start)
        return lines[0], headers, spans, end
    if "content-length" in headers or is_request:
        end = start + int(headers.get("content-length", "0"))
        return lines[0], headers, [(start, min(end, len(data)))], (end if end <= len(data) else -1)
    return lines[0], headers, [(start, len(data))], (len(data) if closed else -1)  # delimited by the close


def _chunks(data: bytearray, pos: int) -> tuple[list[tuple[int, int]], int]:
    """A chunked body's data spans and the offset past its last chunk (and trailers); -1 if incomplete."""
    spans = []
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return spans, -1
        size = int(bytes(data[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            end = data.find(b"\r\n\r\n", pos - 2)  # optional trailers, then an empty line
            return spans, (end + 4 if end >= 0 else -1)
        if pos + size + 2 > len(data):
            return spans, -1
        spans.append((pos, pos + size))
        pos += size + 2


def _read_events(exchange: Exchange, stream: ByteStream, spans: list[tuple[int, int]]) -> None:
    """Split the body into SSE events (an empty line ends one) and keep the content-bearing ones."""
    body = b"".join(bytes(stream.data[a:b]) for a, b in spans)
    starts = []  # body offset -> raw offset, per span
    at = 0
    for a, b in spans:
        starts.append((at, a))
        at += b - a
    keys = [s for s, _ in starts]

    def raw(offset: int) -> int:
        body_start, raw_start = starts[bisect_right(keys, offset) - 1]
        return raw_start + offset - body_start

    pos = 0
    while True:
        end = body.find(b"\n\n", pos)
        cr = body.find(b"\r\n\r\n", pos)
        if cr >= 0 and (end < 0 or cr < end):
            end, sep = cr, 4
        elif end >= 0:
            sep = 2
        else:
            return
        payload = b"\n".join(line[5:].lstrip(b" ") for line in body[pos:end].replace(b"\r\n", b"\n").split(b"\n")
                             if line.startswith(b"data:"))
        if payload and payload != b"[DONE]":
            chunk = _json(payload)
            if not exchange.response_id and isinstance(chunk.get("id"), str):
                exchange.response_id = chunk["id"]
            if _has_content(chunk):
                exchange.events.append(Event(stream.time_of(raw(pos)), stream.time_of(raw(end + sep - 1))))
        pos = end + sep


def _json(payload: bytes) -> dict:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _has_content(chunk: dict) -> bool:
    """Text, reasoning or tool calls in the first choice (what the agent and vLLM's format call content)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return False
    choice = choices[0]
    delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
    return bool(choice.get("text") or delta.get("content") or delta.get("reasoning_content")
                or delta.get("reasoning") or delta.get("tool_calls"))
