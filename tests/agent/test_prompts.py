"""Synthetic prompts do not hit a prefix cache by accident: unique per run and request by default,
reproducible from the key, the same in every run only when the plan asks for shared prompts. Token-id
prompts open with drawn token ids; text and chat prompts with a drawn line of words, the body fitted
so that the whole prompt keeps its exact length on the server's tokenizer."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from siliconbench.agent.target import OPENING_WORDS, UNIQUE_PREFIX_TOKENS, PromptBook, inspect_target, text_prompts

IDS = list(range(1000, 1600))
BLOCK = 16  # vLLM's default prefix-cache block


def book(key: str | None) -> PromptBook:
    made = PromptBook(IDS, 512)
    return made.salted(key) if key is not None else made


def test_two_runs_share_no_first_block():
    first, second = book("0/run-a"), book("0/run-b")
    assert all(first.prompt(k)[:BLOCK] != second.prompt(k)[:BLOCK] for k in range(200))


def test_requests_of_one_run_share_no_first_block():
    run = book("0/run-a")
    openings = {tuple(run.prompt(k)[:BLOCK]) for k in range(2000)}
    assert len(openings) == 2000   # more requests than calibrated ids: rotations alone would repeat


def test_the_same_key_gives_the_same_prompts_of_the_exact_length():
    assert [book("7/shared").prompt(k) for k in range(50)] == [book("7/shared").prompt(k) for k in range(50)]
    assert {len(book("7/shared").prompt(k)) for k in range(50)} == {512}


def test_only_the_opening_changes():
    plain, salted = book(None).prompt(3), book("0/run-a").prompt(3)
    assert salted[UNIQUE_PREFIX_TOKENS:] == plain[UNIQUE_PREFIX_TOKENS:]


# ---- text and chat prompts: an opening line per run and request, then a body fitted to the length ----

TEXT_LENGTH = 96


async def _text_book(url: str, key: str, chat: bool, cache_dir=None, count: int = 40):
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, url, None)
        return await text_prompts(session, target, TEXT_LENGTH, count, chat, key, cache_dir)


async def _server_count(url: str, prompt, chat: bool) -> int:
    async with aiohttp.ClientSession() as session:
        model = (await inspect_target(session, url, None)).model
        body = ({"model": model, "messages": prompt, "add_generation_prompt": True} if chat
                else {"model": model, "prompt": prompt})
        async with session.post(f"{url}/tokenize", json=body) as resp:
            return (await resp.json())["count"]


def _text(prompt) -> str:
    return prompt[0]["content"] if isinstance(prompt, list) else prompt


@pytest.mark.parametrize("chat", [False, True], ids=["text", "chat"])
async def test_text_prompts_of_two_runs_open_differently_at_the_exact_length(sim_url, tmp_path, chat):
    first = await _text_book(sim_url, "0/run-a", chat, tmp_path)
    second = await _text_book(sim_url, "0/run-b", chat, tmp_path)   # the same cached bodies
    for k in range(40):
        a, b = _text(first.prompt(k)), _text(second.prompt(k))
        assert a.split("\n")[0] != b.split("\n")[0]
        assert a.split("\n", 1)[1] == b.split("\n", 1)[1]        # only the opening line changes
        assert await _server_count(sim_url, first.prompt(k), chat) == TEXT_LENGTH
        assert await _server_count(sim_url, second.prompt(k), chat) == TEXT_LENGTH


async def test_text_prompts_of_one_run_share_no_first_block(sim_url):
    run = await _text_book(sim_url, "0/run-a", chat=False)
    assert len({tuple(_text(run.prompt(k)).split()[:BLOCK]) for k in range(40)}) == 40
    assert len({tuple(_text(run.prompt(k)).split()[:OPENING_WORDS]) for k in range(40)}) == 40


async def test_the_same_key_sends_the_same_text_prompts(sim_url, tmp_path):
    fresh = await _text_book(sim_url, "7/shared", True)
    cached = await _text_book(sim_url, "7/shared", True, tmp_path)
    again = await _text_book(sim_url, "7/shared", True, tmp_path)
    assert [fresh.prompt(k) for k in range(40)] == [cached.prompt(k) for k in range(40)] == \
        [again.prompt(k) for k in range(40)]


async def test_an_opening_that_tokenizes_longer_gets_its_body_fitted_again():
    """A tokenizer where 'river' is two tokens: openings with it miss the length the bodies were fitted to
    behind the calibration openings, and are fitted again rather than sent a token long."""
    def count(text: str) -> int:
        return 1 + len(text.split()) + text.split().count("river")

    async def tokenize(request: web.Request) -> web.Response:
        text = (await request.json())["prompt"]
        return web.json_response({"count": count(text), "tokens": list(range(count(text) - 1))})

    async def detokenize(request: web.Request) -> web.Response:
        return web.json_response({"prompt": " ".join(f"w{i}" for i in (await request.json())["tokens"])})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})

    app = web.Application()
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/detokenize", detokenize)
    app.router.add_get("/v1/models", models)
    server = TestServer(app)
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        book = await _text_book(url, "0/run-a", chat=False, count=60)
    finally:
        await server.close()
    prompts = [book.prompt(k) for k in range(60)]
    assert {count(p) for p in prompts} == {TEXT_LENGTH}
    assert any("river" in p.split("\n")[0] for p in prompts)
