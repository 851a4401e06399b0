"""A deterministic toy tokenizer: one whitespace-separated word is one token.

The vocabulary is fixed: a few special tokens, then 4,900 four-letter words made of two consonant-vowel
syllables ("baba", "babe", ...). A word outside the vocabulary maps to a word id by a stable hash (crc32),
so any text has exactly as many tokens as it has words, and `tokenize(detokenize(ids)) == ids` for every
valid id list. Generated text uses the vocabulary's own words, one per token.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

SPECIAL_TOKENS: tuple[str, ...] = ("<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>")
BOS_ID = 0
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
WORDS: tuple[str, ...] = tuple(a + b for a in _SYLLABLES for b in _SYLLABLES)
VOCAB: tuple[str, ...] = SPECIAL_TOKENS + WORDS
VOCAB_SIZE = len(VOCAB)
_FIRST_WORD_ID = len(SPECIAL_TOKENS)
_IDS: dict[str, int] = {word: i for i, word in enumerate(VOCAB)}
# Generated text: token i of a completion is " " + WORDS[i % len(WORDS)] (leading space like real BPE pieces).
_OUTPUT_PIECES: tuple[str, ...] = tuple(" " + w for w in WORDS)


class TokenizerError(ValueError):
    """Input the toy tokenizer cannot handle (a bad token id, a malformed chat message)."""


def tokenize(text: str, add_special_tokens: bool) -> list[int]:
    """Token ids of `text`: one per whitespace-separated word, preceded by BOS when `add_special_tokens`."""
    ids = [BOS_ID] if add_special_tokens else []
    for word in text.split():
        token = _IDS.get(word)
        if token is None:
            token = _FIRST_WORD_ID + zlib.crc32(word.encode()) % len(WORDS)
        ids.append(token)
    return ids


def detokenize(ids: Sequence[int]) -> str:
    """The text of `ids`, words joined by single spaces; `TokenizerError` for an id outside the vocabulary."""
    check_token_ids(ids)
    return " ".join(VOCAB[i] for i in ids)


def check_token_ids(ids: Sequence[Any]) -> None:
    """Raise `TokenizerError` unless every element is an int in `[0, VOCAB_SIZE)`."""
    for i in ids:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < VOCAB_SIZE:
            raise TokenizerError(f"token id {i!r} is out of vocabulary (valid ids are 0..{VOCAB_SIZE - 1})")


def apply_chat_template(messages: Any, add_generation_prompt: bool) -> str:
    """Render chat messages as `<s> <|role|> content ... [<|assistant|>]`.

    `content` may be a string, null, or a list of `{"type": "text", "text": ...}` parts.
    """
    if not isinstance(messages, list) or not messages:
        raise TokenizerError("'messages' must be a non-empty list of {role, content} objects")
    parts = [SPECIAL_TOKENS[BOS_ID]]
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise TokenizerError("each message must be an object with a string 'role'")
        parts.append(f"<|{message['role']}|>")
        parts.append(_message_text(message.get("content")))
    if add_generation_prompt:
        parts.append("<|assistant|>")
    return " ".join(parts)


def _message_text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise TokenizerError("the simulator accepts only text content parts ({'type': 'text', 'text': ...})")
            texts.append(part["text"])
        return " ".join(texts)
    raise TokenizerError("message 'content' must be a string, null or a list of text parts")


def output_text(start: int, stop: int) -> str:
    """Generated text for output tokens `start..stop-1`: one short word, with a leading space, per token."""
    n = len(_OUTPUT_PIECES)
    return "".join(_OUTPUT_PIECES[i % n] for i in range(start, stop))
