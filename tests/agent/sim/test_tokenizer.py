"""The toy tokenizer and the /tokenize, /detokenize endpoints."""

from __future__ import annotations

import pytest

from siliconbench.agent.sim.tokenizer import (BOS_ID, VOCAB_SIZE, TokenizerError, apply_chat_template, detokenize,
                                 output_text, tokenize)

from .conftest import MODEL


def test_one_token_per_word_plus_bos_when_asked():
    assert len(tokenize("the quick  brown\nfox", add_special_tokens=False)) == 4
    assert tokenize("fox", add_special_tokens=True)[0] == BOS_ID


def test_unknown_words_map_to_stable_ids():
    assert tokenize("zebra-crossing!", False) == tokenize("zebra-crossing!", False)
    assert tokenize("zebra", False) != tokenize("giraffe", False)


def test_detokenize_then_tokenize_round_trips_any_valid_ids():
    ids = [BOS_ID, 1, 2, 3, 4, 5, 6, 100, VOCAB_SIZE - 1, 6, 6]
    assert tokenize(detokenize(ids), add_special_tokens=False) == ids


def test_detokenize_rejects_ids_outside_vocabulary():
    with pytest.raises(TokenizerError, match="out of vocabulary"):
        detokenize([VOCAB_SIZE])


def test_generated_text_has_one_word_per_token():
    assert len(tokenize(output_text(3, 3 + 50), False)) == 50


def test_chat_template_counts_role_tags_and_generation_prompt():
    messages = [{"role": "user", "content": "a b c"}]
    assert apply_chat_template(messages, add_generation_prompt=True) == "<s> <|user|> a b c <|assistant|>"
    assert apply_chat_template(messages, add_generation_prompt=False) == "<s> <|user|> a b c"


async def test_tokenize_endpoint_returns_vllm_shape(sim):
    resp = await sim.post("/tokenize", json={"model": MODEL, "prompt": "hello world", "add_special_tokens": False})
    data = await resp.json()
    assert set(data) == {"count", "max_model_len", "tokens", "token_strs"}
    assert data["count"] == 2 == len(data["tokens"])
    assert data["max_model_len"] == 8192
    assert data["token_strs"] is None


async def test_tokenize_detokenize_round_trip_over_http_gives_exact_length(sim):
    ids = list(range(10, 522))
    text = (await (await sim.post("/detokenize", json={"model": MODEL, "tokens": ids})).json())["prompt"]
    back = await (await sim.post("/tokenize", json={"model": MODEL, "prompt": text,
                                                     "add_special_tokens": False})).json()
    assert back["tokens"] == ids
    assert back["count"] == 512


async def test_tokenize_adds_bos_by_default_for_prompts(sim):
    data = await (await sim.post("/tokenize", json={"model": MODEL, "prompt": "a b"})).json()
    assert data["tokens"][0] == BOS_ID and data["count"] == 3


async def test_detokenize_rejects_bad_ids_with_400(sim):
    resp = await sim.post("/detokenize", json={"model": MODEL, "tokens": [1, -1]})
    assert resp.status == 400
