"""The vLLM target as the agent first meets it: reachable, which model, simulated or real,
and prompts of an exact token length calibrated with the server's own tokenizer."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from siliconbench.agent.errors import ConfigError, TargetMisconfigured, TargetUnreachable
from siliconbench.core.limits import MAX_ID_CHARS, text_fault

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


# A vLLM that has finished loading answers /v1/models in milliseconds; one that accepts the connection
# and says nothing for 10 s is hung, still loading behind a proxy, or not a vLLM at all.
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=10)


async def inspect_target(session: aiohttp.ClientSession, base_url: str, model: str | None) -> TargetInfo:
    """Check that the target answers (each request within PROBE_TIMEOUT) and serves `model` (default: its
    first model)."""
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"--target {base_url!r} must be a URL, e.g. http://{base_url or '127.0.0.1:8000'}")
    try:
        async with session.get(f"{base_url}/v1/models", timeout=PROBE_TIMEOUT) as resp:
            simulated = resp.headers.get(SIMULATOR_HEADER) == "1"
            if resp.status != 200:
                raise TargetMisconfigured(
                    f"{base_url}/v1/models answered HTTP {resp.status}: is this an OpenAI-compatible vLLM server?"
                )
            served = [m["id"] for m in (await resp.json()).get("data", [])]
        version = await _version(session, base_url)
    except aiohttp.ContentTypeError as exc:
        raise TargetMisconfigured(f"{base_url}/v1/models answered {exc.headers and exc.headers.get('Content-Type')}, "
                                  "not JSON: is this an OpenAI-compatible vLLM server? Check --target") from None
    except TimeoutError:
        raise TargetUnreachable(
            f"vLLM target {base_url} accepted the connection but did not answer within {PROBE_TIMEOUT.total:.0f} s; "
            "check that the server has finished loading (its log), or pass the right --target URL") from None
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
    fault = text_fault(str(chosen), MAX_ID_CHARS)
    if fault:  # every record of the run carries it: the collector would refuse them all
        raise TargetMisconfigured(f"{base_url} serves a model whose id {str(chosen)[:80]!r} {fault}: "
                                  "the store cannot hold it; serve the model under a shorter name")
    if fault := text_fault(version, MAX_ID_CHARS):
        log.warning("%s/version %r %s: stored as unknown", base_url, version[:80], fault)
        version = ""
    return TargetInfo(base_url=base_url, model=chosen, version=version, simulated=simulated)


async def _version(session: aiohttp.ClientSession, base_url: str) -> str:
    async with session.get(f"{base_url}/version", timeout=PROBE_TIMEOUT) as resp:
        if resp.status != 200:
            return ""
        body = await resp.json(content_type=None)
        return str(body.get("version", "")) if isinstance(body, dict) else ""


# Token-id prompts open with this many tokens drawn for the request from a key (PromptBook.salted):
# vLLM's prefix cache matches whole blocks (16 tokens by default) from the first token, so a prompt
# whose first block no earlier prompt shares gets no cache hit. 4 draws from ~len(ids) calibrated ids
# give ~10^11 openings: two runs, or two requests, share one by chance about never.
UNIQUE_PREFIX_TOKENS = 4


class PromptBook:
    """Prompts for the requests of a run, request k getting prompt k: token-id lists of exactly `length`
    tokens (rotations of calibrated ids, opened by a prefix unique to the key and k once `salted`), or a
    pool of calibrated/dataset prompts (text or chat messages) that repeats only past its end.

    Without a key every run sends the same prompts, so a second run measures the server's prefix cache
    (the issue: 1,024-token prompts read TTFT 150.7 ms on the first run, 48.9 ms on the second)."""

    def __init__(self, ids: list[int], length: int, pool: list | None = None) -> None:
        if pool is None and len(ids) < length:
            raise TargetMisconfigured(f"could only calibrate {len(ids)} prompt tokens, {length} needed")
        self._ids = ids
        self._length = length
        self._pool = pool
        self._key = b""

    def salted(self, key: str) -> PromptBook:
        """Token-id prompts opened by a prefix drawn from `key` and the request number (reproducible:
        the same key gives the same prompts); pool prompts are left as they are."""
        self._key = key.encode()
        return self

    def _prefix(self, k: int) -> list[int]:
        digest = hashlib.blake2b(self._key + b"/" + str(k).encode(), digest_size=4 * UNIQUE_PREFIX_TOKENS).digest()
        ids = self._ids
        return [ids[int.from_bytes(digest[4 * i:4 * i + 4], "big") % len(ids)] for i in range(UNIQUE_PREFIX_TOKENS)]

    def prompt(self, k: int) -> list[int] | str | list[dict]:
        if self._pool is not None:
            return self._pool[k % len(self._pool)]
        ids = self._ids
        r = k % len(ids)
        rotated = ids[r:] + ids[:r]
        if not self._key or self._length <= UNIQUE_PREFIX_TOKENS:
            return rotated[: self._length]
        return self._prefix(k) + rotated[UNIQUE_PREFIX_TOKENS: self._length]

    def __len__(self) -> int:
        return len(self._pool) if self._pool is not None else len(self._ids)


def chat_messages(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def _post_json(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    try:
        async with session.post(url, json=body) as resp:
            if resp.status != 200:
                raise TargetMisconfigured(
                    f"{url} answered HTTP {resp.status} ({(await resp.text())[:200]}); siliconbench needs it to "
                    "build prompts of an exact length"
                )
            return await resp.json()
    except aiohttp.ClientError as exc:
        raise TargetUnreachable(f"{url} failed: {exc}") from None
    except TimeoutError:
        raise TargetUnreachable(f"{url} did not answer in time; check the server's log, or pass the right --target") from None


async def _synthetic_ids(session: aiohttp.ClientSession, target: TargetInfo, length: int) -> list[int]:
    """Token ids of synthetic text, tokenized by the server (POST /tokenize), at least length + 64 of them."""
    words = max(length + 64, 16)
    text = " ".join(_WORDS[i % len(_WORDS)] + ("" if i < len(_WORDS) else str(i)) for i in range(words))
    body = {"model": target.model, "prompt": text, "add_special_tokens": False}
    ids = (await _post_json(session, f"{target.base_url}/tokenize", body))["tokens"]
    return [int(i) for i in ids]


async def calibrate_prompts(session: aiohttp.ClientSession, target: TargetInfo, length: int) -> PromptBook:
    """Token-id prompts (for /v1/completions) of exactly `length` tokens."""
    ids = await _synthetic_ids(session, target, length)
    log.info("calibrated prompts: %d tokens requested, %d token ids from the server's tokenizer", length, len(ids))
    return PromptBook(ids, length)


async def calibrate_text_prompts(session: aiohttp.ClientSession, target: TargetInfo, length: int, count: int,
                                 chat: bool, cache_dir: Path | None = None) -> PromptBook:
    """`count` distinct text prompts (chat: user messages) whose server-side token count - chat template
    included for chat - is exactly `length`. Each is made by detokenizing a rotation of synthetic ids
    (POST /detokenize) and re-checked with POST /tokenize, trimming or extending until it fits; cached per
    model, server version, endpoint and length."""
    kind = "chat" if chat else "text"
    cache = _cache_file(cache_dir, target, kind, length)
    pool = _read_cache(cache, count)
    if pool is None:
        ids = await _synthetic_ids(session, target, length + 64)
        overhead = 0
        if chat:
            probe = await _post_json(session, f"{target.base_url}/tokenize",
                                     {"model": target.model, "messages": chat_messages(""), "add_generation_prompt": True})
            overhead = int(probe["count"])
        limit = asyncio.Semaphore(16)

        async def one(k: int) -> str:
            async with limit:
                return await _fit_text(session, target, ids[k % len(ids):] + ids[:k % len(ids)], length, overhead, chat)

        pool = list(await asyncio.gather(*(one(k) for k in range(count))))
        _write_cache(cache, pool)
        log.info("calibrated %d %s prompts of exactly %d tokens with /detokenize + /tokenize", count, kind, length)
    return PromptBook([], length, [chat_messages(t) for t in pool] if chat else pool)


async def _fit_text(session: aiohttp.ClientSession, target: TargetInfo, ids: list[int], length: int, overhead: int,
                    chat: bool) -> str:
    base = target.base_url
    take = max(length - overhead - (0 if chat else 1), 1)  # completions text gets a BOS by default
    for _ in range(8):
        text = (await _post_json(session, f"{base}/detokenize", {"model": target.model, "tokens": ids[:take]}))["prompt"]
        body = ({"model": target.model, "messages": chat_messages(text), "add_generation_prompt": True} if chat
                else {"model": target.model, "prompt": text})
        got = int((await _post_json(session, f"{base}/tokenize", body))["count"])
        if got == length:
            return text
        take = max(take + (length - got), 1)
    raise TargetMisconfigured(f"could not build a {'chat ' if chat else ''}prompt of exactly {length} tokens with "
                              f"this server's tokenizer (last try gave {got}); use token-id prompts on completions")


async def dataset_prompts(session: aiohttp.ClientSession, target: TargetInfo, path: str, chat: bool,
                          min_tokens: int, max_tokens: int) -> PromptBook:
    """Prompts from a JSONL file (one object per line with "prompt" text or chat "messages"), kept when
    their server-side token count is within [min_tokens, max_tokens] (0: no bound)."""
    try:
        with open(path, encoding="utf-8") as handle:  # noqa: ASYNC230 - once, before any request is timed
            rows = [json.loads(line) for line in handle if line.strip()]
    except OSError as exc:
        raise ConfigError(f"cannot read dataset {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"dataset {path} is not JSON Lines: {exc}") from None
    prompts: list = []
    for i, row in enumerate(rows):
        if isinstance(row, dict) and isinstance(row.get("messages"), list):
            prompts.append(row["messages"] if chat else _join_messages(row["messages"]))
        elif isinstance(row, dict) and isinstance(row.get("prompt"), str):
            prompts.append(chat_messages(row["prompt"]) if chat else row["prompt"])
        else:
            raise ConfigError(f"dataset {path} line {i + 1}: expected an object with \"prompt\" or \"messages\"")
    limit = asyncio.Semaphore(16)

    async def count(prompt) -> int:
        body = ({"model": target.model, "messages": prompt, "add_generation_prompt": True} if chat
                else {"model": target.model, "prompt": prompt})
        async with limit:
            return int((await _post_json(session, f"{target.base_url}/tokenize", body))["count"])

    counts = await asyncio.gather(*(count(p) for p in prompts))
    kept = [p for p, n in zip(prompts, counts) if n >= min_tokens and (not max_tokens or n <= max_tokens)]
    if not kept:
        raise ConfigError(f"dataset {path}: none of its {len(prompts)} prompts is {min_tokens}-"
                          f"{max_tokens or 'any'} tokens long; widen dataset_min_tokens/dataset_max_tokens")
    log.info("dataset %s: %d of %d prompts within the length filter", path, len(kept), len(prompts))
    return PromptBook([], 0, kept)


def _join_messages(messages: list) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


def _cache_file(cache_dir: Path | None, target: TargetInfo, kind: str, length: int) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha256(f"{target.model}|{target.version}|{kind}|{length}".encode()).hexdigest()[:16]
    return cache_dir / f"prompts-{key}.json"


def _read_cache(path: Path | None, count: int) -> list[str] | None:
    if path is None:
        return None
    try:
        pool = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return pool[:count] if isinstance(pool, list) and len(pool) >= count else None


def _write_cache(path: Path | None, pool: list[str]) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(pool), encoding="utf-8")
    except OSError as exc:  # a read-only filesystem only costs a re-calibration next time
        log.debug("prompt cache %s not written: %s", path, exc)
