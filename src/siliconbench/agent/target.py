"""The vLLM target as the agent first meets it: reachable, which model, simulated or real,
and prompts of an exact token length calibrated with the server's own tokenizer."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

import aiohttp

from siliconbench.agent.errors import ConfigError, TargetMisconfigured, TargetUnreachable
from siliconbench.core.limits import MAX_ID_CHARS, text_fault
from siliconbench.core.simulator import SIMULATOR_HEADER

log = logging.getLogger(__name__)

# Words for synthetic prompts: varied enough that rotations of the calibrated token ids
# give every request a different prefix (no prefix-cache hits across requests).
_WORDS = (
    "river stone quiet market signal orange window theory garden silver engine morning "
    "painter harbor winter logic castle velvet number bridge thunder pocket mirror candle "
    "forest rocket anchor circle meadow puzzle lantern shadow copper island feather canyon"
).split()


class ChatTurn(NamedTuple):
    """A dataset's chat prompt that offers the model tools: its messages, and `tools` as the request sends them."""

    messages: list
    tools: list


Prompt = list[int] | str | list[dict] | ChatTurn


@dataclass(frozen=True, slots=True)
class TargetInfo:
    base_url: str
    model: str
    version: str
    simulated: bool
    max_model_len: int | None = None  # the longest prompt + output the model takes, as /v1/models says

    def check_fits(self, input_tokens: int, output_tokens: int) -> None:
        """ConfigError where a request of `input_tokens` asking for `output_tokens` is longer than the
        server takes: vLLM would refuse every one of them (HTTP 400)."""
        if self.max_model_len is not None and input_tokens + output_tokens > self.max_model_len:
            raise ConfigError(
                f"{input_tokens} input + {output_tokens} output tokens = {input_tokens + output_tokens} is more than "
                f"{self.model}'s max_model_len {self.max_model_len} at {self.base_url} (GET /v1/models): lower "
                "--input-tokens or --output-tokens, or serve the model with a larger --max-model-len")


# A vLLM that has finished loading answers /v1/models in milliseconds; one that accepts the connection
# and says nothing for 10 s is hung, still loading behind a proxy, or not a vLLM at all.
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=10)


async def inspect_target(session: aiohttp.ClientSession, base_url: str, model: str | None,
                         mixed: tuple[str, ...] = ()) -> TargetInfo:
    """Check that the target answers (each request within PROBE_TIMEOUT) and serves `model` (default: its
    first model) and every model of a mix (`mixed`)."""
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"--target {base_url!r} must be a URL, e.g. http://{base_url or '127.0.0.1:8000'}")
    try:
        async with session.get(f"{base_url}/v1/models", timeout=PROBE_TIMEOUT) as resp:
            simulated = resp.headers.get(SIMULATOR_HEADER) == "1"
            if resp.status != 200:
                raise TargetMisconfigured(
                    f"{base_url}/v1/models answered HTTP {resp.status}: is this an OpenAI-compatible vLLM server?"
                )
            models = (await resp.json()).get("data", [])
            served = [m["id"] for m in models]
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
    missing = [name for name in mixed if name not in served]
    if missing:
        raise TargetMisconfigured(f"{base_url} does not serve {missing} of the plan's models; it serves {served}: "
                                  "fix models.names")
    fault = text_fault(str(chosen), MAX_ID_CHARS)
    if fault:  # every record of the run carries it: the collector would refuse them all
        raise TargetMisconfigured(f"{base_url} serves a model whose id {str(chosen)[:80]!r} {fault}: "
                                  "the store cannot hold it; serve the model under a shorter name")
    if fault := text_fault(version, MAX_ID_CHARS):
        log.warning("%s/version %r %s: stored as unknown", base_url, version[:80], fault)
        version = ""
    limit = next((m.get("max_model_len") for m in models if m["id"] == chosen), None)
    return TargetInfo(base_url=base_url, model=chosen, version=version, simulated=simulated,
                      max_model_len=limit if type(limit) is int and limit > 0 else None)


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
# Text and chat prompts open with a line of this many words drawn the same way from _WORDS (36^6, ~2·10^9
# openings), ahead of a body that already differs per request: the text twin of UNIQUE_PREFIX_TOKENS.
OPENING_WORDS = 6


def draws(key: bytes, k: int, n: int) -> list[int]:
    """n reproducible 32-bit draws for request k under `key`."""
    digest = hashlib.blake2b(key + b"/" + str(k).encode(), digest_size=4 * n).digest()
    return [int.from_bytes(digest[4 * i:4 * i + 4], "big") for i in range(n)]


def opening(key: str, k: int) -> str:
    """The first line of text prompt k under `key` (the same key gives the same line)."""
    return " ".join(_WORDS[d % len(_WORDS)] for d in draws(key.encode(), k, OPENING_WORDS)) + "\n"


class PromptBook:
    """Prompts for the requests of a run, request k getting prompt k: token-id lists of exactly `length`
    tokens (rotations of calibrated ids, opened by a prefix unique to the key and k once `salted`), or a
    pool of text prompts (synthetic ones each opened for its run by `text_prompts`, or a dataset's) that
    repeats only past its end.

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
        ids = self._ids
        return [ids[d % len(ids)] for d in draws(self._key, k, UNIQUE_PREFIX_TOKENS)]

    def prompt(self, k: int) -> Prompt:
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

    @property
    def ids(self) -> list[int]:
        """The calibrated token ids the token-id prompts are made of."""
        return self._ids


def chat_messages(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def post_json(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
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


async def synthetic_ids(session: aiohttp.ClientSession, target: TargetInfo, length: int) -> list[int]:
    """Token ids of synthetic text, tokenized by the server (POST /tokenize), at least length + 64 of them."""
    words = max(length + 64, 16)
    text = " ".join(_WORDS[i % len(_WORDS)] + ("" if i < len(_WORDS) else str(i)) for i in range(words))
    body = {"model": target.model, "prompt": text, "add_special_tokens": False}
    ids = (await post_json(session, f"{target.base_url}/tokenize", body))["tokens"]
    return [int(i) for i in ids]


async def calibrate_prompts(session: aiohttp.ClientSession, target: TargetInfo, length: int) -> PromptBook:
    """Token-id prompts (for /v1/completions) of exactly `length` tokens."""
    ids = await synthetic_ids(session, target, length)
    log.info("calibrated prompts: %d tokens requested, %d token ids from the server's tokenizer", length, len(ids))
    return PromptBook(ids, length)


# The key whose openings the cached bodies were fitted behind (any fixed key: a run's own openings are
# re-checked, and the rare one that tokenizes to another length gets its body fitted again).
_CALIBRATION_KEY = "calibration"


async def text_prompts(session: aiohttp.ClientSession, target: TargetInfo, length: int, count: int, chat: bool,
                       key: str, cache_dir: Path | None = None) -> PromptBook:
    """`count` text prompts (chat: user messages) whose server-side token count - chat template included
    for chat - is exactly `length`. Prompt k is `opening(key, k)` then a body: the first tokens differ from
    run to run (key: the seed and the run id) and from request to request, so no prompt hits vLLM's prefix
    cache by accident, while the same key sends the same prompts (shared prompts). Bodies are fitted once
    per model, server version, endpoint and length (cached in `cache_dir`); every opened prompt is
    re-checked with POST /tokenize, one request each."""
    fitter = _TextFitter(session, target, length, chat)
    kind = "chat" if chat else "text"
    cache = _cache_file(cache_dir, target, kind, length)
    bodies = _read_cache(cache, count)
    if bodies is None:
        bodies = await fitter.fit_all([opening(_CALIBRATION_KEY, k) for k in range(count)])
        _write_cache(cache, bodies)
        log.info("calibrated %d %s prompt bodies of %d tokens with /detokenize + /tokenize", count, kind, length)
    prompts, refitted = await fitter.opened(bodies, [opening(key, k) for k in range(count)])
    log.info("%d %s prompts of exactly %d tokens, each opened for this run (%d fitted again)", count, kind, length,
             refitted)
    return PromptBook([], length, [chat_messages(t) for t in prompts] if chat else prompts)


class _TextFitter:
    """Fits text behind an opening to exactly `length` tokens with the server's own tokenizer: the body is
    a rotation of synthetic token ids (k-th prompt, k-th rotation), detokenized (POST /detokenize) and
    counted with the opening (POST /tokenize), trimmed or extended until it fits."""

    def __init__(self, session: aiohttp.ClientSession, target: TargetInfo, length: int, chat: bool) -> None:
        self._session, self._target, self._length, self._chat = session, target, length, chat
        self._ids: list[int] | None = None
        self._overhead: int | None = None
        self._limit = asyncio.Semaphore(16)

    async def count(self, text: str) -> int:
        target = self._target
        body = ({"model": target.model, "messages": chat_messages(text), "add_generation_prompt": True} if self._chat
                else {"model": target.model, "prompt": text})
        return int((await post_json(self._session, f"{target.base_url}/tokenize", body))["count"])

    async def fit_all(self, openings: list[str]) -> list[str]:
        """A body for each opening (k-th opening, k-th rotation)."""
        return list(await asyncio.gather(*(self._fit_one(k, o) for k, o in enumerate(openings))))

    async def opened(self, bodies: list[str], openings: list[str]) -> tuple[list[str], int]:
        """Each opening before its body, checked; a body fitted again where the pair misses the length.
        Returns the prompts and how many were fitted again."""
        async def one(k: int) -> tuple[str, bool]:
            async with self._limit:
                text = openings[k] + bodies[k]
                if await self.count(text) == self._length:
                    return text, False
            return openings[k] + await self._fit_one(k, openings[k]), True

        done = await asyncio.gather(*(one(k) for k in range(len(bodies))))
        return [text for text, _ in done], sum(again for _, again in done)

    async def _fit_one(self, k: int, opening_text: str) -> str:
        async with self._limit:
            ids = await self._synthetic_ids()
            r = k % len(ids)
            return await self._fit(ids[r:] + ids[:r], opening_text)

    async def _synthetic_ids(self) -> list[int]:
        if self._ids is None:
            self._ids = await synthetic_ids(self._session, self._target, self._length + 64)
        return self._ids

    async def _fit(self, ids: list[int], opening_text: str) -> str:
        length = self._length
        if self._overhead is None:  # the chat template or BOS, and an opening: the first guess, refined below
            self._overhead = await self.count(opening_text)
        take = max(length - self._overhead, 1)
        got = 0
        for _ in range(8):
            body = (await post_json(self._session, f"{self._target.base_url}/detokenize",
                                     {"model": self._target.model, "tokens": ids[:take]}))["prompt"]
            got = await self.count(opening_text + body)
            if got == length:
                return body
            take = max(take + (length - got), 1)
        raise TargetMisconfigured(f"could not build a {'chat ' if self._chat else ''}prompt of exactly {length} tokens "
                                  f"with this server's tokenizer (last try gave {got}); use token-id prompts on "
                                  "completions")


async def dataset_prompts(session: aiohttp.ClientSession, target: TargetInfo, path: str, chat: bool,
                          min_tokens: int, max_tokens: int) -> PromptBook:
    """Prompts from a JSONL file (one object per line with "prompt" text or chat "messages", and for chat
    optionally "tools", sent with its messages), kept when their server-side token count is within
    [min_tokens, max_tokens] (0: no bound)."""
    try:
        with open(path, encoding="utf-8") as handle:  # noqa: ASYNC230 - once, before any request is timed
            rows = [json.loads(line) for line in handle if line.strip()]
    except OSError as exc:
        raise ConfigError(f"cannot read dataset {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"dataset {path} is not JSON Lines: {exc}") from None
    prompts: list = []
    for i, row in enumerate(rows):
        if chat and isinstance(row, dict) and isinstance(row.get("messages"), list) and "tools" in row:
            if not isinstance(row["tools"], list):
                raise ConfigError(f"dataset {path} line {i + 1}: \"tools\" must be a list of tools")
            prompts.append(ChatTurn(row["messages"], row["tools"]))
        elif isinstance(row, dict) and isinstance(row.get("messages"), list):
            prompts.append(row["messages"] if chat else _join_messages(row["messages"]))
        elif isinstance(row, dict) and isinstance(row.get("prompt"), str):
            prompts.append(chat_messages(row["prompt"]) if chat else row["prompt"])
        else:
            raise ConfigError(f"dataset {path} line {i + 1}: expected an object with \"prompt\" or \"messages\"")
    limit = asyncio.Semaphore(16)

    async def count(prompt) -> int:
        body = ({"model": target.model, **chat_fields(prompt), "add_generation_prompt": True} if chat
                else {"model": target.model, "prompt": prompt})
        async with limit:
            return int((await post_json(session, f"{target.base_url}/tokenize", body))["count"])

    counts = await asyncio.gather(*(count(p) for p in prompts))
    kept = [p for p, n in zip(prompts, counts) if n >= min_tokens and (not max_tokens or n <= max_tokens)]
    if not kept:
        raise ConfigError(f"dataset {path}: none of its {len(prompts)} prompts is {min_tokens}-"
                          f"{max_tokens or 'any'} tokens long; widen dataset_min_tokens/dataset_max_tokens")
    log.info("dataset %s: %d of %d prompts within the length filter", path, len(kept), len(prompts))
    return PromptBook([], 0, kept)


def chat_fields(prompt: list[dict] | ChatTurn) -> dict:
    """A chat prompt's request fields: its messages, and its tools where it has them."""
    if isinstance(prompt, ChatTurn):
        return {"messages": prompt.messages, "tools": prompt.tools}
    return {"messages": prompt}


def _join_messages(messages: list) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


def _cache_file(cache_dir: Path | None, target: TargetInfo, kind: str, length: int) -> Path | None:
    if cache_dir is None:
        return None
    # "opened": the cache holds bodies fitted behind an opening, not whole prompts as it once did
    key = hashlib.sha256(f"{target.model}|{target.version}|{kind}|{length}|opened".encode()).hexdigest()[:16]
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
