"""The simulator's prefix cache, kept as vLLM V1 keeps its own: whole blocks of `block_size` token ids, each
named by a hash chained over every block before it (vLLM's block hashes), never evicted. A request is served
the leading blocks of its prompt already computed, at most its prompt less one token; its prompt's blocks are
computed once its prefill ends (its first chunk), its output's when it finishes (all but the last token, never
fed back). Counted as vLLM counts them: prompt tokens queried, and those found.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


class PrefixCache:
    """`enabled` False: nothing is served from it (vLLM's --no-enable-prefix-caching); queries still count."""

    def __init__(self, block_size: int, enabled: bool) -> None:
        self.block_size = block_size
        self.enabled = enabled
        self._blocks: set[bytes] = set()
        self.queries = 0  # vllm:prefix_cache_queries_total
        self.hits = 0     # vllm:prefix_cache_hits_total

    def _hashes(self, ids: Sequence[int], blocks: int) -> list[bytes]:
        size, parent, out = self.block_size, b"", []
        for b in range(blocks):
            parent = hashlib.blake2b(parent + repr(list(ids[b * size:(b + 1) * size])).encode(),
                                     digest_size=16).digest()
            out.append(parent)
        return out

    def lookup(self, prompt: Sequence[int]) -> int:
        """Tokens of `prompt` served from the cache; counted as a query of the whole prompt."""
        hit = 0
        whole = (len(prompt) - 1) // self.block_size if self.enabled else 0
        for block in self._hashes(prompt, whole):
            if block not in self._blocks:
                break
            hit += self.block_size
        self.queries += len(prompt)
        self.hits += hit
        return hit

    def compute(self, ids: Sequence[int]) -> None:
        """The KV of `ids` is computed: its whole blocks are cached."""
        if not self.enabled:
            return
        self._blocks.update(self._hashes(ids, len(ids) // self.block_size))
