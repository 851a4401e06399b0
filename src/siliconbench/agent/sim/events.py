"""vLLM-shaped response bodies: SSE events for streams, JSON objects for non-streaming responses.

Stream chunks are built by concatenating a per-request prefix, pre-serialised once, with the few fields
that change; one `json.dumps` (of the chunk's text) per chunk. Field order follows vLLM's pydantic models.
Completions chunks always carry `"usage"` (null unless continuous usage), as vLLM serialises them with
`exclude_unset=False`; chat chunks carry it only with continuous usage.
"""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def usage_json(prompt_tokens: int, completion_tokens: int, details: str = "") -> str:
    """vLLM's UsageInfo object, serialised; `details` is `prompt_details(...)` or empty."""
    return (f'{{"prompt_tokens":{prompt_tokens},"total_tokens":{prompt_tokens + completion_tokens},'
            f'"completion_tokens":{completion_tokens}{details}}}')


def prompt_details(cached_tokens: int) -> str:
    """UsageInfo's prompt_tokens_details, as vLLM adds it with --enable-prompt-tokens-details."""
    return f',"prompt_tokens_details":{{"cached_tokens":{cached_tokens}}}'


def error_event(message: str, err_type: str = "InternalServerError", code: int = 500) -> bytes:
    """The mid-stream error vLLM sends (`create_streaming_error_response`); `[DONE]` follows it."""
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


class StreamEvents:
    object_name = ""

    def __init__(self, response_id: str, created: int, model: str, prompt_tokens: int, continuous_usage: bool,
                 details: str = ""):
        """`details`: what usage says of the prompt besides its count (`prompt_details`), or nothing."""
        self._envelope = (f'data: {{"id":{json.dumps(response_id)},"object":"{self.object_name}",'
                          f'"created":{created},"model":{json.dumps(model)},')
        self._choice_prefix = self._envelope + '"choices":[{"index":0,'
        self._prompt_tokens = prompt_tokens
        self._continuous = continuous_usage
        self._details = details

    def usage(self, completion_tokens: int) -> bytes:
        """The final usage-only chunk (`choices: []`) sent when `include_usage` is set."""
        return (self._envelope + '"choices":[],"usage":' + usage_json(self._prompt_tokens, completion_tokens, self._details)
                + "}\n\n").encode()

    def opening(self) -> bytes:
        """Bytes sent together with (just before) the first content chunk."""
        return b""

    def content(self, text: str, completion_tokens: int, finish_reason: str | None) -> bytes:
        """A content chunk; `completion_tokens` is cumulative including this chunk's tokens."""
        raise NotImplementedError


class CompletionEvents(StreamEvents):
    """Chunks of a `/v1/completions` stream (`object: text_completion`)."""

    object_name = "text_completion"

    def content(self, text: str, completion_tokens: int, finish_reason: str | None) -> bytes:
        usage = usage_json(self._prompt_tokens, completion_tokens, self._details) if self._continuous else "null"
        tail = _NO_FINISH if finish_reason is None else f'"{finish_reason}","stop_reason":null'
        return (self._choice_prefix + '"text":' + json.dumps(text) + ',"logprobs":null,"finish_reason":' + tail
                + '}],"usage":' + usage + "}\n\n").encode()


_NO_FINISH = 'null,"stop_reason":null'


class ChatEvents(StreamEvents):
    """Chunks of a `/v1/chat/completions` stream (`object: chat.completion.chunk`)."""

    object_name = "chat.completion.chunk"

    def opening(self) -> bytes:
        """The role-only first chunk vLLM emits with the first engine output."""
        return (self._choice_prefix + '"delta":{"role":"assistant","content":""},"logprobs":null,'
                '"finish_reason":null}]' + self._usage_field(0) + "}\n\n").encode()

    def content(self, text: str, completion_tokens: int, finish_reason: str | None) -> bytes:
        return self._delta('{"content":' + json.dumps(text) + "}", completion_tokens, finish_reason)

    def reasoning(self, field: str, text: str, completion_tokens: int, finish_reason: str | None) -> bytes:
        """A reasoning chunk, in `field` (reasoning, or reasoning_content before vLLM 0.10)."""
        return self._delta(f'{{"{field}":' + json.dumps(text) + "}", completion_tokens, finish_reason)

    def tool_call(self, call_id: str, name: str, completion_tokens: int, finish_reason: str | None,
                  arguments: str | None = None) -> bytes:
        """A tool call's first delta: its id, type and function name (arguments only when given)."""
        function = {"name": name} if arguments is None else {"name": name, "arguments": arguments}
        call = {"index": 0, "id": call_id, "type": "function", "function": function}
        return self._delta('{"tool_calls":[' + json.dumps(call, separators=(",", ":")) + "]}", completion_tokens,
                           finish_reason)

    def tool_arguments(self, fragment: str, completion_tokens: int, finish_reason: str | None) -> bytes:
        """A fragment of the call's JSON arguments."""
        return self._delta('{"tool_calls":[{"index":0,"function":{"arguments":' + json.dumps(fragment) + "}}]}",
                           completion_tokens, finish_reason)

    def _delta(self, delta: str, completion_tokens: int, finish_reason: str | None) -> bytes:
        tail = "null" if finish_reason is None else f'"{finish_reason}","stop_reason":null'
        return (self._choice_prefix + '"delta":' + delta + ',"logprobs":null,"finish_reason":' + tail + "}]"
                + self._usage_field(completion_tokens) + "}\n\n").encode()

    def _usage_field(self, completion_tokens: int) -> str:
        return ',"usage":' + usage_json(self._prompt_tokens, completion_tokens, self._details) if self._continuous else ""


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens}


def completion_body(response_id: str, created: int, model: str, text: str, finish_reason: str,
                    prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A non-streaming `/v1/completions` response."""
    return {"id": response_id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason,
                         "stop_reason": None}],
            "usage": _usage(prompt_tokens, completion_tokens)}


def chat_body(response_id: str, created: int, model: str, text: str, finish_reason: str,
              prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A non-streaming `/v1/chat/completions` response."""
    return {"id": response_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": finish_reason, "stop_reason": None}],
            "usage": _usage(prompt_tokens, completion_tokens)}
