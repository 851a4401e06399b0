"""What one streamed completion says, event by event (DESIGN §3).

`StreamTimeline` receives each SSE data payload with the arrival offset of the read that
carried it, and keeps only what the record needs: the offset and token count of every
content-bearing chunk, the usage counts, the finish reason, and whether `[DONE]` came.
A chunk is content-bearing when it carries text, reasoning or tool calls, or when the
server's continuous usage says it carried tokens; a chat stream's role-only first chunk
and the final usage-only chunk are not.

Hot path: a chunk shaped like vLLM's (a JSON object with `"choices":[`, no `"error"` key) is read
without decoding the JSON: the few keys timing needs are found by byte search (an unescaped `"key":`
cannot occur inside a JSON string, where every quote is escaped). That costs ~0.5 us a chunk where
`json.loads` costs ~2.8 us (measured here on a 283-byte vLLM chunk). Anything else - error events,
other shapes, broken JSON - takes the full `json.loads` path, which types the fault.
"""

from __future__ import annotations

import json
import re

from siliconbench.agent.errors import MalformedChunk, ServerErrorEvent

_DONE = b"[DONE]"
_loads = json.loads
_INT = re.compile(rb"\s*(\d+)")
_COMPLETION_KEY = b'"completion_tokens":'
_PROMPT_KEY = b'"prompt_tokens":'
_FINISH_KEY = b'"finish_reason":"'
_CHOICES = b'"choices":[{'
_NO_CHOICES = b'"choices":[]'
_ERROR_KEY = b'"error"'
# Non-empty generated output: a key followed by the first byte of a non-empty string (or list).
_CONTENT_KEYS = (b'"text":"', b'"content":"', b'"reasoning_content":"', b'"reasoning":"', b'"tool_calls":[')


class StreamTimeline:
    __slots__ = (
        "offsets_ns", "tokens", "prompt_tokens", "usage_tokens", "finish_reason", "done", "_cumulative",
        "_continuous",
    )

    def __init__(self) -> None:
        self.offsets_ns: list[int] = []
        self.tokens: list[int] = []
        self.prompt_tokens = 0
        self.usage_tokens: int | None = None  # completion_tokens of the latest usage the server sent
        self.finish_reason = ""
        self.done = False
        self._cumulative = 0                  # completion tokens accounted to chunks so far
        self._continuous = False              # the server sends usage on content chunks

    def on_event(self, payload: bytes, offset_ns: int) -> None:
        """Account one SSE data payload that arrived `offset_ns` after the request was sent."""
        if payload[:2] != b'{"' or payload[-1:] != b"}" or _ERROR_KEY in payload:
            self._on_event_decoded(payload, offset_ns)
            return
        if _CHOICES in payload:
            has_choices = True
        elif _NO_CHOICES in payload:
            has_choices = False
        else:
            self._on_event_decoded(payload, offset_ns)
            return
        carried = 0
        i = payload.rfind(_COMPLETION_KEY)
        if i >= 0:
            match = _INT.match(payload, i + 20)
            if match is None:
                self._on_event_decoded(payload, offset_ns)
                return
            completion = int(match.group(1))
            self.usage_tokens = completion
            if has_choices:
                self._continuous = True
                carried = completion - self._cumulative
                self._cumulative = completion
            if not self.prompt_tokens or not has_choices:
                j = payload.find(_PROMPT_KEY)
                match = _INT.match(payload, j + 16) if j >= 0 else None
                if match is not None:
                    self.prompt_tokens = int(match.group(1))
        if not has_choices:
            return
        k = payload.find(_FINISH_KEY)
        if k >= 0:
            k += 17
            self.finish_reason = payload[k:payload.find(b'"', k)].decode()
        if carried > 0 or _has_content_bytes(payload):
            self.offsets_ns.append(offset_ns)
            self.tokens.append(carried if self._continuous else 1)

    def _on_event_decoded(self, payload: bytes, offset_ns: int) -> None:
        """The general path: decode the JSON and account it (error events and unusual shapes)."""
        if payload == _DONE:
            self.done = True
            return
        try:
            chunk = _loads(payload)
        except ValueError as exc:
            raise MalformedChunk(f"stream chunk is not JSON ({exc.msg}): {payload[:120]!r}") from None
        if type(chunk) is not dict:
            raise MalformedChunk(f"stream chunk is not a JSON object: {payload[:120]!r}")
        if "error" in chunk:
            raise ServerErrorEvent(_error_text(chunk["error"]))
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        carried = 0
        if usage:
            if type(usage) is not dict:
                raise MalformedChunk(f"'usage' is not an object: {payload[:120]!r}")
            completion = usage.get("completion_tokens")
            if type(completion) is int:
                self.usage_tokens = completion
                if choices:
                    self._continuous = True
                    carried = completion - self._cumulative
                    self._cumulative = completion
            prompt = usage.get("prompt_tokens")
            if type(prompt) is int:
                self.prompt_tokens = prompt
        if not choices:
            return
        if type(choices) is not list or type(choices[0]) is not dict:
            raise MalformedChunk(f"'choices' is not a list of objects: {payload[:120]!r}")
        choice = choices[0]
        reason = choice.get("finish_reason")
        if reason:
            self.finish_reason = reason
        if carried > 0 or _has_content(choice):
            self.offsets_ns.append(offset_ns)
            self.tokens.append(carried if self._continuous else 1)

    @property
    def tokens_counted(self) -> bool:
        """True when the server gave no usage and the output length is the agent's own count."""
        return self.usage_tokens is None

    @property
    def output_tokens(self) -> int:
        return len(self.tokens) if self.usage_tokens is None else self.usage_tokens


def _has_content_bytes(payload: bytes) -> bool:
    for key in _CONTENT_KEYS:
        i = payload.find(key)
        if i >= 0 and payload[i + len(key):i + len(key) + 1] not in (b'"', b"]"):
            return True
    return False


def _has_content(choice: dict) -> bool:
    if choice.get("text"):
        return True
    delta = choice.get("delta")
    if not delta:
        return False
    return bool(
        delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning") or delta.get("tool_calls")
    )


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error)[:500]
