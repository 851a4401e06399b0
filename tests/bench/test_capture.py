"""bench/capture.py takes a loopback capture that bench/wire.py reads back, or says why it cannot."""

from __future__ import annotations

import http.client
import http.server
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import capture
from capture import Capture
from wire import read_exchanges

STREAM = b'data: {"choices":[{"index":0,"delta":{"content":" hi"}}]}\n\ndata: [DONE]\n\n'


class Streamer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(STREAM)))
        self.end_headers()
        self.wfile.write(STREAM)

    def log_message(self, *args: object) -> None:
        pass


def test_without_tcpdump_the_reason_names_the_install_script(monkeypatch):
    monkeypatch.setattr(capture.shutil, "which", lambda name: None)
    assert "scripts/ensure_tcpdump.sh" in (Capture.unavailable() or "")


def test_a_capture_holds_every_exchange_on_the_port_with_nothing_dropped(tmp_path):
    if reason := Capture.unavailable():
        pytest.skip(f"no loopback capture here: {reason}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Streamer)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Capture.start(port, tmp_path / "c.pcap") as cap:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            for request_id in ("a", "b"):
                conn.request("POST", "/v1/chat/completions", b"{}", {"X-Request-Id": request_id})
                conn.getresponse().read()
            conn.close()
    finally:
        server.shutdown()
        server.server_close()

    found = read_exchanges(cap.path, port)

    assert [(e.request_id, e.order, e.status, len(e.events)) for e in found] == [("a", 0, 200, 1), ("b", 1, 200, 1)]
    assert all(e.ttft_ns is not None and e.ttft_ns >= 0 for e in found)
    assert cap.captured > 0 and cap.dropped == 0
