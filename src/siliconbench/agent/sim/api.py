"""Request validation for the simulator's OpenAI-compatible endpoints, with vLLM's error shapes.

Test-only request fields (ignored by real vLLM, which rejects nothing it does not know of here):
`sim_stop_after: n` ends generation with finish_reason "stop" after n tokens (if n < max_tokens);
`sim_error_after: n` makes a stream send vLLM's mid-stream error event after n content chunks;
`sim_tool_args_invalid: true` leaves a tool call's JSON arguments unclosed.

A chat request with `tools` (and `tool_choice` other than "none") is answered with one call of its first
tool, as vLLM's tool parsers stream it (finish_reason "tool_calls"); the profile's `reasoning_tokens`
stream first, in chat responses only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

from siliconbench.agent.sim.profile import SimProfile
from siliconbench.agent.sim.tokenizer import TokenizerError, apply_chat_template, check_token_ids, tokenize

COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # vLLM's CompletionRequest default (OpenAI's too)


class ApiError(Exception):
    """A request the server rejects; `body()` is vLLM's `{"error": {message, type, param, code}}`."""

    def __init__(self, status: HTTPStatus, err_type: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.err_type = err_type
        self.message = message
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.err_type, "param": self.param,
                          "code": int(self.status)}}


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, "BadRequestError", message, param)


def model_not_found(model: str) -> ApiError:
    return ApiError(HTTPStatus.NOT_FOUND, "NotFoundError", f"The model `{model}` does not exist.", "model")


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What the server needs to know to generate one response."""

    prompt_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool
    continuous_usage: bool  # every chunk carries cumulative usage (needs include_usage too, as in vLLM)
    stop_after: int | None
    error_after: int | None
    model: str = ""                 # the served name asked for (base or adapter)
    reasoning_tokens: int = 0       # of output_tokens, streamed first as reasoning
    tool: str | None = None         # the function the response calls, if any
    tool_args_invalid: bool = False
    prompt_ids: tuple[int, ...] = ()  # the prompt as the server tokenizes it (the prefix cache's key)
    user: str = ""                  # chat: the end-user id (a conversation, for the history check)
    messages: list | None = None    # chat: the messages as sent

    @property
    def output_tokens(self) -> int:
        """Tokens generated: max_tokens, or fewer when `sim_stop_after` asks for an early stop."""
        return self.max_tokens if self.stop_after is None else min(self.stop_after, self.max_tokens)

    @property
    def finish_reason(self) -> str:
        return "length" if self.output_tokens == self.max_tokens else "stop"


def check_body(body: Any, profile: SimProfile) -> dict[str, Any]:
    """The body as a dict whose `model` (if given; vLLM then uses the served model) is the served one."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and model not in profile.served:
        raise model_not_found(str(model))
    return body


def parse_completion(body: Any, profile: SimProfile) -> GenerationRequest:
    """Validate a `/v1/completions` body (`prompt`: str, [str], [int] or [[int]])."""
    body = check_body(body, profile)
    add_special = _bool(body, "add_special_tokens", True)
    ids = _prompt_ids(body.get("prompt"), add_special)
    max_tokens = _opt_int(body, "max_tokens", 1)
    return replace(_generation(body, profile, len(ids), max_tokens, COMPLETIONS_DEFAULT_MAX_TOKENS),
                   prompt_ids=tuple(ids))


def parse_chat(body: Any, profile: SimProfile) -> GenerationRequest:
    """Validate a `/v1/chat/completions` body; prompt tokens include the chat template's."""
    body = check_body(body, profile)
    ids = chat_ids(body, add_special_default=False)
    prompt_tokens = len(ids)
    max_tokens = _opt_int(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _opt_int(body, "max_tokens", 1)
    gen = _generation(body, profile, prompt_tokens, max_tokens, profile.max_model_len - prompt_tokens)
    return replace(gen, reasoning_tokens=min(profile.reasoning_tokens, gen.output_tokens), tool=_tool(body),
                   tool_args_invalid=_bool(body, "sim_tool_args_invalid", False), prompt_ids=tuple(ids),
                   user=str(body.get("user") or ""), messages=body.get("messages"))


def _tool(body: dict[str, Any]) -> str | None:
    """The name of the first function in `tools`, unless tool_choice is "none"."""
    tools = body.get("tools")
    if tools is None or body.get("tool_choice") == "none":
        return None
    try:
        return str(tools[0]["function"]["name"])
    except (TypeError, KeyError, IndexError):
        raise bad_request("'tools' must be a non-empty list of {type: function, function: {name, ...}}",
                          "tools") from None


def tokenize_request(body: Any, profile: SimProfile) -> list[int]:
    """Token ids for a `/tokenize` body: `prompt` (BOS by default) or `messages` (no extra BOS by default)."""
    body = check_body(body, profile)
    if "messages" in body:
        return chat_ids(body, add_special_default=False)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise bad_request("'prompt' must be a string (or send 'messages')", "prompt")
    return tokenize(prompt, _bool(body, "add_special_tokens", True))


def detokenize_request(body: Any, profile: SimProfile) -> list[int]:
    """The validated `tokens` of a `/detokenize` body."""
    body = check_body(body, profile)
    tokens = body.get("tokens")
    if not isinstance(tokens, list):
        raise bad_request("'tokens' must be a list of token ids", "tokens")
    try:
        check_token_ids(tokens)
    except TokenizerError as e:
        raise bad_request(str(e), "tokens") from None
    return tokens


def chat_ids(body: dict[str, Any], add_special_default: bool) -> list[int]:
    """Token ids of `messages` rendered with the toy chat template."""
    try:
        text = apply_chat_template(body.get("messages"), _bool(body, "add_generation_prompt", True))
    except TokenizerError as e:
        raise bad_request(str(e), "messages") from None
    return tokenize(text, _bool(body, "add_special_tokens", add_special_default))


def _prompt_ids(prompt: Any, add_special: bool) -> list[int]:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        return tokenize(prompt, add_special)
    if isinstance(prompt, list) and prompt:
        try:
            check_token_ids(prompt)
        except TokenizerError as e:
            raise bad_request(str(e), "prompt") from None
        return prompt
    if prompt is None:
        raise bad_request("'prompt' is required", "prompt")
    raise bad_request("'prompt' must be a non-empty string or token id list; the simulator serves one prompt "
                      "per request", "prompt")


def _generation(body: dict[str, Any], profile: SimProfile, prompt_tokens: int, max_tokens: int | None,
                default_max_tokens: int) -> GenerationRequest:
    limit = profile.max_model_len
    if prompt_tokens >= limit:
        raise bad_request(f"This model's maximum context length is {limit} tokens. However, your request has "
                          f"{prompt_tokens} input tokens. Please reduce the length of the input messages.")
    if max_tokens is None:
        max_tokens = default_max_tokens
    elif prompt_tokens + max_tokens > limit:
        raise bad_request(f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
                          f"maximum context length is {limit} tokens and your request has {prompt_tokens} input "
                          f"tokens ({max_tokens} > {limit} - {prompt_tokens}).", "max_tokens")
    if body.get("n", 1) != 1:
        raise bad_request("the simulator supports n=1 only", "n")
    _bool(body, "ignore_eos", False)  # honoured trivially: output length is max_tokens unless sim_stop_after
    stream = _bool(body, "stream", False)
    options = body.get("stream_options")
    if options is not None and not stream:
        raise bad_request("Stream options can only be defined when `stream=True`.", "stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object", "stream_options")
    options = options or {}
    include_usage = _bool(options, "include_usage", False)
    return GenerationRequest(
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=include_usage,
        continuous_usage=include_usage and _bool(options, "continuous_usage_stats", False),
        stop_after=_opt_int(body, "sim_stop_after", 1),
        error_after=_opt_int(body, "sim_error_after", 0),
        model=str(body.get("model") or profile.model),
    )


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"'{key}' must be true or false, got {value!r}", key)
    return value


def _opt_int(body: dict[str, Any], key: str, minimum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise bad_request(f"'{key}' must be an integer >= {minimum}, got {value!r}", key)
    return value
