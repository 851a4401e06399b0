"""The vLLM target as the agent first meets it: reachable, which model, simulated or real,
and prompts of an exact token length calibrated with the server's own tokenizer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

from agent.errors import TargetMisconfigured, TargetUnreachable

log = logging.getLogger(__name__)

SIMULATOR_HEADER = "X-Siliconbench-Simulator"
# Words for synthetic prompts: varied enough that rotations of the calibrated token ids
# give every request a different prefix (no prefix-cache hits across requests).
_WORDS = (
    "river stone quiet market signal orange window theory garden silver engine morning "
    "painter harbor winter logic castle velvet number bridge thunder pocket mirror candle "
    "forest rocket anchor circle meadow puzzle lantern shadow copper island feather canyon"
).split()


@dataclass(frozen=True, slots=True)
class TargetInfo:
    base_url: str
    model: str
    version: str
    simulated: bool


async def inspect_target(session: aiohttp.ClientSession, base_url: str, model: str | None) -> TargetInfo:
    """Check that the target answers and serves `model` (default: its first model)."""
    try:
        async with session.get(f"{base_url}/v1/models") as resp:
            simulated = resp.headers.get(SIMULATOR_HEADER) == "1"
            if resp.status != 200:
                raise TargetMisconfigured(
                    f"{base_url}/v1/models answered HTTP {resp.status}: is this an OpenAI-compatible vLLM server?"
                )
            served = [m["id"] for m in (await resp.json()).get("data", [])]
        version = await _version(session, base_url)
    except aiohttp.ClientError as exc:
        raise TargetUnreachable(
            f"vLLM target {base_url} is unreachable ({exc.__class__.__name__}: {exc}); "
            "start the server or pass the right --target URL"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise TargetMisconfigured(f"{base_url}/v1/models returned an unexpected body ({exc})") from None
    if not served:
        raise TargetMisconfigured(f"{base_url} serves no model (GET /v1/models is empty)")
    chosen = model or served[0]
    if chosen not in served:
        raise TargetMisconfigured(f"{base_url} does not serve model {chosen!r}; it serves {served}: fix --model")
    return TargetInfo(base_url=base_url, model=chosen, version=version, simulated=simulated)


async def _version(session: aiohttp.ClientSession, base_url: str) -> str:
    async with session.get(f"{base_url}/version") as resp:
        if resp.status != 200:
            return ""
        body = await resp.json(content_type=None)
        return str(body.get("version", "")) if isinstance(body, dict) else ""


class PromptBook:
    """Token-id prompts of exactly `length` tokens; request k gets a different rotation."""

    def __init__(self, ids: list[int], length: int) -> None:
        if len(ids) < length:
            raise TargetMisconfigured(f"could only calibrate {len(ids)} prompt tokens, {length} needed")
        self._ids = ids
        self._length = length

    def prompt(self, k: int) -> list[int]:
        ids = self._ids
        r = k % len(ids)
        rotated = ids[r:] + ids[:r]
        return rotated[: self._length]


async def calibrate_prompts(session: aiohttp.ClientSession, target: TargetInfo, length: int) -> PromptBook:
    """Tokenize synthetic text on the server (POST /tokenize) until it yields >= length + 64 ids."""
    words = max(length + 64, 16)
    text = " ".join(_WORDS[i % len(_WORDS)] + ("" if i < len(_WORDS) else str(i)) for i in range(words))
    body = {"model": target.model, "prompt": text, "add_special_tokens": False}
    try:
        async with session.post(f"{target.base_url}/tokenize", json=body) as resp:
            if resp.status != 200:
                raise TargetMisconfigured(
                    f"{target.base_url}/tokenize answered HTTP {resp.status}; siliconbench needs it to build "
                    "prompts of an exact length"
                )
            ids = (await resp.json())["tokens"]
    except aiohttp.ClientError as exc:
        raise TargetUnreachable(f"{target.base_url}/tokenize failed: {exc}") from None
    log.info("calibrated prompts: %d tokens requested, %d token ids from %d words", length, len(ids), words)
    return PromptBook([int(i) for i in ids], length)
