"""The text a session sends: system prompts and user messages of an exact length in the server's tokens
(fitted with its POST /tokenize and /detokenize, as the prompts of single requests are: agent/target.py),
and the token ids of each turn's prompt and answer, from the same tokenizer.

A message is an opening drawn for it (its session, its turn: no two sessions share one by accident) and a
body fitted behind it; its length is the text's own tokens (no special tokens), the chat template's come on
top and show in each request's prompt_tokens.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from siliconbench.agent.errors import TargetMisconfigured
from siliconbench.agent.target import TargetInfo, opening, post_json, synthetic_ids

_FIT_TRIES = 8


class Tokenizer:
    """The server's tokenizer, over its HTTP endpoints. `max_model_len` is known after the first count."""

    def __init__(self, session: aiohttp.ClientSession, target: TargetInfo) -> None:
        self._session = session
        self._target = target
        self._ids: list[int] = []
        self._bodies: dict[int, str] = {}  # length -> a body fitted for it
        self.max_model_len = 0
        self._limit = asyncio.Semaphore(16)

    async def _tokenize(self, body: dict[str, Any]) -> list[int]:
        async with self._limit:
            answer = await post_json(self._session, f"{self._target.base_url}/tokenize",
                                     {"model": self._target.model, **body})
        self.max_model_len = int(answer.get("max_model_len") or self.max_model_len)
        return [int(i) for i in answer["tokens"]]

    async def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The token ids of a chat request's prompt, chat template and generation prompt included."""
        return await self._tokenize({"messages": messages, "add_generation_prompt": True})

    async def text_ids(self, text: str) -> list[int]:
        """The token ids of `text` alone (no special tokens)."""
        return await self._tokenize({"prompt": text, "add_special_tokens": False})

    async def message(self, key: str, length: int) -> str:
        """Text of exactly `length` tokens, opened by words drawn from `key` (the same key, the same text). The
        body fitted for a length is kept: a later message of that length costs one count, unless its opening
        changes the body's tokens (then it is fitted again)."""
        head = " ".join(opening(key, 0).split()[:max(1, min(6, length // 3))])
        kept = self._bodies.get(length)
        if kept is not None and len(await self.text_ids(head + kept)) == length:
            return head + kept
        if len(self._ids) < length + 64:
            self._ids = await synthetic_ids(self._session, self._target, length + 64)
        take, got, body = max(length - len(head.split()), 0), 0, ""
        for _ in range(_FIT_TRIES):
            body = " " + await self._detokenize(self._ids[:take]) if take else ""
            got = len(await self.text_ids(head + body))
            if got == length or (got > length and take == 0):
                break
            take = max(take + (length - got), 0)
        if got != length:
            raise TargetMisconfigured(f"could not build a session message of exactly {length} tokens with this "
                                      f"server's tokenizer (last try gave {got}); ask for another length")
        self._bodies[length] = body
        return head + body

    async def _detokenize(self, ids: list[int]) -> str:
        async with self._limit:
            answer = await post_json(self._session, f"{self._target.base_url}/detokenize",
                                     {"model": self._target.model, "tokens": ids})
        return str(answer["prompt"])
