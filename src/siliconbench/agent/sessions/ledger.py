"""The client's model of the server's prefix cache: which blocks of token ids the server has seen, so each
request's expected reuse can be set beside what the server reports (DESIGN §3, prefix reuse).

vLLM caches whole blocks of `block_size` tokens, each keyed by its tokens and every token before it, from a
prompt's first token; a request reuses the leading blocks of its prompt that an earlier request computed,
never its whole prompt (the last token is always computed, so at most (prompt - 1) tokens rounded down to a
block). A request computes its prompt's blocks during prefill and its output's as it generates, all but the
last token sampled (never fed back). The ledger holds the same chain of block keys and assumes nothing is
evicted: where the server reports less, its cache forgot (or never kept) what the client expected.

An answer's token ids are the server's tokenizer's of the text received, as the next turn's prompt holds
them. A model that generated a sequence its tokenizer would not produce from that text (a random model can)
computed other ids: the server then serves the next turn up to that block only, and reports up to a block
less than expected (once in 12 turns against vLLM's CPU build and its tiny random model). A prompt's blocks
are taken as computed when its first chunk arrives: a request the server admits between the end of another's
prefill and that chunk's arrival may be served more than expected (sessions sharing a system prompt, at once).
"""

from __future__ import annotations

from collections.abc import Sequence


class BlockLedger:
    """Blocks the server has seen, by chain key. `block_size` 0 (unknown) counts single tokens."""

    def __init__(self, block_size: int) -> None:
        self.block_size = max(block_size, 1)
        self._seen: set[int] = set()

    def _keys(self, ids: Sequence[int], whole_blocks: int) -> list[int]:
        size, key, keys = self.block_size, 0, []
        for b in range(whole_blocks):
            key = hash((key, tuple(ids[b * size:(b + 1) * size])))
            keys.append(key)
        return keys

    def expected(self, prompt: Sequence[int]) -> int:
        """Leading tokens of `prompt` the server has seen, in whole blocks, short of its last token."""
        reused = 0
        for key in self._keys(prompt, (len(prompt) - 1) // self.block_size):
            if key not in self._seen:
                break
            reused += self.block_size
        return reused

    def computed(self, ids: Sequence[int]) -> None:
        """The server computed the KV of `ids` (a prompt after its prefill; prompt + output but the last
        token after the response): its whole blocks are now seen."""
        self._seen.update(self._keys(ids, len(ids) // self.block_size))
