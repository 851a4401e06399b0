"""What the simulator sent, and when, so a benchmark can compare the client's arrival times with it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class SendRecord:
    """One request: its response id, the client's X-Request-Id (if any), its arrival and each streamed
    content chunk's hand-over to the transport (none for non-streaming requests or error events), all UTC
    wall-clock ns (`time.time_ns()`). `prompt_ids`: a completions request's prompt when it was token ids
    (what a trace replay's test compares), else empty."""

    request_id: str
    x_request_id: str | None
    endpoint: str
    arrival_ns: int
    chunk_sent_ns: list[int] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)


class SendLog:
    """Collects a `SendRecord` per generation request, in arrival order. Not thread-safe (one event loop)."""

    def __init__(self) -> None:
        self.records: list[SendRecord] = []

    def begin(self, request_id: str, x_request_id: str | None, endpoint: str, arrival_ns: int,
              prompt: object = None) -> list[int]:
        """Start a record (`prompt`: the body's, kept when it is token ids); returns the list the server
        appends each chunk's send time to."""
        ids = prompt if isinstance(prompt, list) and all(type(i) is int for i in prompt) else []
        record = SendRecord(request_id, x_request_id, endpoint, arrival_ns, prompt_ids=ids)
        self.records.append(record)
        return record.chunk_sent_ns

    def dump(self, path: str | Path) -> None:
        """Write one JSON object per request to `path` (JSON Lines), replacing the file."""
        with open(path, "w", encoding="utf-8") as out:
            for r in self.records:
                out.write(
                    json.dumps(
                        {
                            "request_id": r.request_id,
                            "x_request_id": r.x_request_id,
                            "endpoint": r.endpoint,
                            "arrival_ns": r.arrival_ns,
                            "chunk_sent_ns": r.chunk_sent_ns,
                        }
                    )
                    + "\n"
                )
