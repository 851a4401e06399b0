"""The simulator's prefix cache and conversation check: what the sessions tests hold the client to."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient, TestServer

from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.history import HistoryCheck
from siliconbench.agent.sim.prefix import PrefixCache
from siliconbench.agent.sim.server import create_app


def test_a_prompt_is_served_its_leading_whole_blocks_and_counted_as_vllm_counts_them():
    cache = PrefixCache(block_size=4, enabled=True)
    assert cache.lookup(list(range(10))) == 0
    cache.compute(list(range(10)))
    assert cache.lookup(list(range(10)) + [42]) == 8
    assert (cache.queries, cache.hits) == (21, 8)


def test_a_disabled_cache_serves_nothing():
    cache = PrefixCache(block_size=4, enabled=False)
    cache.compute(list(range(10)))
    assert cache.lookup(list(range(10))) == 0


async def chat(client: TestClient, messages: list, user: str = "s1") -> dict:
    resp = await client.post("/v1/chat/completions", json={
        "messages": messages, "max_tokens": 4, "user": user, "stream": True,
        "stream_options": {"include_usage": True}})
    assert resp.status == 200
    usage = None
    async for line in resp.content:
        if line.startswith(b"data: {") and b'"usage":{' in line:
            usage = line
    return json.loads(usage[6:])["usage"]


async def test_a_second_turn_is_served_from_the_first_and_a_rewritten_history_is_a_violation():
    history = HistoryCheck()
    profile = SimProfile(ttft_ms=1, itl_ms=0, prefix_caching=True, prompt_tokens_details=True, block_size=4)
    async with TestClient(TestServer(create_app(profile, history=history))) as client:
        first = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]
        usage = await chat(client, first)
        assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
        answer = "".join(f" {w}" for w in ("baba", "babe", "babi", "babo"))
        good = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "more"}]
        usage = await chat(client, good)
        # the first turn computed its 13 prompt tokens and 3 of its 4 answer tokens: 4 whole blocks
        assert usage["prompt_tokens_details"]["cached_tokens"] == 16
        assert history.violations == []
        await chat(client, [*first, {"role": "assistant", "content": "something else"}, good[-1]])
        assert history.turns == 2 and len(history.violations) == 1
