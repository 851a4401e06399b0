"""A minimal SSE reader for the simulator tests: events with their client-side arrival times."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Event:
    t: float  # perf_counter() when the line was read
    data: Any  # parsed JSON, the string "[DONE]", or None for a comment
    comment: str | None = None

    @property
    def has_choices(self) -> bool:
        return isinstance(self.data, dict) and bool(self.data.get("choices"))


async def read_events(resp: aiohttp.ClientResponse) -> list[Event]:
    """Every event and comment of an SSE body, in order; asserts the `data: ...\\n\\n` framing."""
    events: list[Event] = []
    expect_blank = False
    async for raw in resp.content:
        t = time.perf_counter()
        line = raw.decode()
        assert line.endswith("\n"), f"unterminated line {line!r}"
        line = line[:-1]
        if expect_blank:
            assert line == "", f"event not followed by a blank line: {line!r}"
            expect_blank = False
        elif line.startswith(":"):
            events.append(Event(t, None, comment=line[1:].strip()))
            expect_blank = True
        else:
            assert line.startswith("data: "), f"not an SSE data line: {line!r}"
            payload = line[len("data: "):]
            events.append(Event(t, "[DONE]" if payload == "[DONE]" else json.loads(payload)))
            expect_blank = True
    return events


def content_events(events: list[Event]) -> list[Event]:
    """Events that carry generated text (completions' `text`, chat's `delta.content`)."""
    out = []
    for e in events:
        if not e.has_choices:
            continue
        choice = e.data["choices"][0]
        if "text" in choice or ("content" in choice.get("delta", {}) and "role" not in choice["delta"]):
            out.append(e)
    return out
