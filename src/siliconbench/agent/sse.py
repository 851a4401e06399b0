"""Incremental Server-Sent Events decoder (WHATWG HTML §9.2 "event stream interpretation").

Bytes arrive in arbitrary pieces: one read may hold several events, or end in the middle of
a line or of a CRLF pair. `SseDecoder.feed` returns the `data` payload of every event that a
piece completes, in order. Lines end in CRLF, LF or CR; lines starting with ':' are comments
(keep-alive pings) and are ignored; a UTF-8 byte order mark opening the stream is skipped; several `data:` lines of one event are joined with LF; an
event is dispatched at a blank line and only if it had data. Fields other than `data`
(`event`, `id`, `retry`) carry nothing siliconbench times, and are ignored.
"""

from __future__ import annotations

_LF = b"\n"
_CR = b"\r"
_BOM = b"\xef\xbb\xbf"


class SseDecoder:
    __slots__ = ("_partial", "_data", "_skip_lf", "_at_start")

    def __init__(self) -> None:
        self._partial = b""           # an incomplete last line carried to the next feed
        self._data: list[bytes] = []  # data lines of the event being assembled
        self._skip_lf = False         # the previous piece ended in CR: a leading LF completes CRLF
        self._at_start = True         # no byte of the stream decoded yet (a BOM may open it)

    def feed(self, piece: bytes) -> list[bytes]:
        """Consume one read; return the data payloads of the events it completes."""
        if self._skip_lf:
            self._skip_lf = False
            if piece[:1] == _LF:
                piece = piece[1:]
        if _CR in piece:
            # Rare on real servers: normalise CRLF and lone CR to LF. A CR at the very end may be
            # the first half of a CRLF split across reads; remember to drop the LF that follows.
            self._skip_lf = piece.endswith(_CR)
            piece = piece.replace(b"\r\n", _LF).replace(_CR, _LF)
        buf = self._partial + piece if self._partial else piece
        if self._at_start:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._partial = buf  # too few bytes yet to tell a BOM from the stream's first line
                return []
            self._at_start = False
            if buf.startswith(_BOM):
                buf = buf[len(_BOM):]
        lines = buf.split(_LF)
        self._partial = lines.pop()
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else _LF.join(data))
                    data = self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value[:1] == b" " else value)
            elif line == b"data":
                data.append(b"")
            # comment (':...') and other fields: nothing to keep
        return out

    def pending(self) -> bool:
        """True when bytes of an unfinished event are buffered (a stream cut mid-event)."""
        return bool(self._partial or self._data)
