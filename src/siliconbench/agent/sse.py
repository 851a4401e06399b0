"""Incremental Server-Sent Events decoder (WHATWG HTML §9.2 "event stream interpretation").

Bytes arrive in arbitrary pieces: one read may hold several events, or end in the middle of
a line or of a CRLF pair. `SseDecoder.feed` returns the `data` payload of every event that a
piece completes, in order. Lines end in CRLF, LF or CR; lines starting with ':' are comments
(keep-alive pings) and are ignored; a UTF-8 byte order mark opening the stream is skipped; several `data:` lines of one event are joined with LF; an
event is dispatched at a blank line and only if it had data. Fields other than `data`
(`event`, `id`, `retry`) carry nothing siliconbench times, and are ignored.

Bounded: an unfinished line is kept as the list of its pieces and joined once, when its end arrives, so a
long line costs time linear in its length (joining the carried bytes to every read made an 8 MiB line take
6.8 s). A line, or an event's data lines (each counted whole, `data:` included, so that an endless run of
empty `data:` lines is bounded too), longer than `MAX_EVENT_BYTES` is a `MalformedChunk`: the request ends
there instead of growing the agent's memory until its timeout or the body's byte bound.
"""

from __future__ import annotations

from siliconbench.agent.errors import MalformedChunk

MAX_EVENT_BYTES = 1 << 20  # one line or one event's data; vLLM's chunks are under 1 KiB, with logprobs a few KiB

_LF = b"\n"
_CR = b"\r"
_BOM = b"\xef\xbb\xbf"


class SseDecoder:
    __slots__ = ("_partial", "_partial_bytes", "_data", "_data_bytes", "_skip_lf", "_at_start")

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # the pieces of an incomplete last line, carried to the next feed
        self._partial_bytes = 0
        self._data: list[bytes] = []     # data lines of the event being assembled
        self._data_bytes = 0
        self._skip_lf = False            # the previous piece ended in CR: a leading LF completes CRLF
        self._at_start = True            # no byte of the stream decoded yet (a BOM may open it)

    def feed(self, piece: bytes) -> list[bytes]:
        """Consume one read; return the data payloads of the events it completes. Raises MalformedChunk
        when a line or an event grows past MAX_EVENT_BYTES."""
        if self._skip_lf:
            self._skip_lf = False
            if piece[:1] == _LF:
                piece = piece[1:]
        if _CR in piece:
            # Rare on real servers: normalise CRLF and lone CR to LF. A CR at the very end may be
            # the first half of a CRLF split across reads; remember to drop the LF that follows.
            self._skip_lf = piece.endswith(_CR)
            piece = piece.replace(b"\r\n", _LF).replace(_CR, _LF)
        if _LF not in piece:  # no line ends here (and no BOM can be told yet): keep the piece for later
            self._carry(piece)
            return []
        partial = self._partial
        if partial:
            partial.append(piece)
            buf = b"".join(partial)
            self._partial, self._partial_bytes = [], 0
        else:
            buf = piece
        if self._at_start:
            self._at_start = False
            if buf.startswith(_BOM):
                buf = buf[len(_BOM):]
        lines = buf.split(_LF)
        self._carry(lines.pop())
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else _LF.join(data))
                    data = self._data = []
                    self._data_bytes = 0
            elif line.startswith(b"data:") or line == b"data":
                value = line[5:]
                data.append(value[1:] if value[:1] == b" " else value)
                self._data_bytes += len(line)  # the field name too: empty data lines are not free
                if self._data_bytes > MAX_EVENT_BYTES:
                    raise MalformedChunk(f"an SSE event's data is longer than {MAX_EVENT_BYTES} bytes")
            # comment (':...') and other fields: nothing to keep
        return out

    def _carry(self, tail: bytes) -> None:
        if not tail:
            return
        self._partial.append(tail)
        self._partial_bytes += len(tail)
        if self._partial_bytes > MAX_EVENT_BYTES:
            raise MalformedChunk(f"an SSE line is longer than {MAX_EVENT_BYTES} bytes")

    def pending(self) -> bool:
        """True when bytes of an unfinished event are buffered (a stream cut mid-event)."""
        return bool(self._partial or self._data)
