"""A trace's prompts: token ids of each request's exact input length, where every hash id of the trace is one
block of `block_size` token ids, the same wherever the id appears, and the rest of a prompt is the request's own.

Block h is a prefix of 4 ids drawn from the key and h, then a rotation of the calibrated ids (the ids the
server's own /tokenize gave, as for synthetic prompts): two ids' blocks differ in their first tokens, so in
their first server block too. A prompt's tokens past its hash ids' blocks (all of them, for a trace without
prefix information) open the same way from the key and the request's number: never shared.

The reuse a request should get is known before it is sent: its leading blocks whose chain of hash ids an
earlier request (in arrival order) sent already, in tokens, at most its prompt less one token (the server
computes the last one) and in whole server blocks where the server's block size is known.
"""

from __future__ import annotations

from siliconbench.agent.target import UNIQUE_PREFIX_TOKENS, Prompt, PromptBook, draws
from siliconbench.agent.traces.formats import TraceRow
from siliconbench.agent.traces.load import Replay
from siliconbench.core.wire import pb


def expected_reuse(replay: Replay, block_size: int, server_block: int, passes: int) -> list[int]:
    """Tokens each request should find in the server's prefix cache, for `passes` replays of `replay` in order."""
    chains: dict[tuple[int, int], int] = {}   # (parent chain, hash id) -> chain id; chain 0: empty prefix
    sent: dict[int, int] = {}                 # chain id -> most tokens of its last block sent so far
    expected = []
    for _ in range(passes):
        for row in replay.rows:
            reuse, parent, reusable = 0, 0, True
            for j, h in enumerate(row.hash_ids):
                length = min(block_size, row.input_tokens - j * block_size)
                if length <= 0:
                    break
                chain = chains.setdefault((parent, h), len(chains) + 1)
                if reusable:
                    have = sent.get(chain, 0)
                    reuse += min(have, length)
                    reusable = have >= length
                sent[chain] = max(sent.get(chain, 0), length)
                parent = chain
            reuse = min(reuse, row.input_tokens - 1)
            expected.append(reuse // server_block * server_block if server_block else reuse)
    return expected


class TraceBook(PromptBook):
    """Prompt k: a warm-up prompt (one of the first `warmup`) or the trace's request (k - warmup) mod its length,
    replays after the first sending fresh tails behind the same blocks."""

    def __init__(self, ids: list[int], replay: Replay, block_size: int, server_block: int, warmup: int,
                 passes: int, warmup_tokens: int) -> None:
        super().__init__(ids, warmup_tokens)
        self.replay = replay
        self.block_size = block_size
        self.server_block = server_block
        self._warmup = warmup
        self._expected = expected_reuse(replay, block_size, server_block, passes)

    def _opened(self, draw_key: bytes, k: int, length: int) -> list[int]:
        """`length` ids: 4 drawn from the key and k, then the calibrated ids from k's rotation, wrapping. Built
        per request (a few microseconds), never kept: a long trace has millions of distinct blocks."""
        ids = self._ids
        n = len(ids)
        out = [ids[d % n] for d in draws(draw_key, k, UNIQUE_PREFIX_TOKENS)]
        r = k % n
        while len(out) < length:
            take = length - len(out)
            out += ids[r:r + take]
            r = 0
        return out[:length]

    def block(self, h: int) -> list[int]:
        """The token ids behind hash id `h` (block_size of them)."""
        return self._opened(self._key + b"/block", h, self.block_size)

    def row(self, k: int) -> TraceRow:
        """The trace's request that prompt k (past the warm-up) replays."""
        return self.replay.rows[(k - self._warmup) % len(self.replay.rows)]

    def prompt(self, k: int) -> Prompt:
        if k < self._warmup:
            return super().prompt(k)
        row = self.row(k)
        length = row.input_tokens
        ids: list[int] = []
        for h in row.hash_ids:
            if len(ids) >= length:
                break
            ids += self.block(h)
        if len(ids) < length:
            ids += self._opened(self._key + b"/tail", k, length - len(ids))
        return ids[:length]

    def annotate(self, record: pb.RequestRecord, k: int) -> None:
        """Set what the trace says of request k on its record: its line and the reuse it should get."""
        record.trace_line = self.row(k).line
        record.expected_cached_tokens = self._expected[k - self._warmup]

    def arrival_ns(self, i: int) -> int:
        """Request i of a replay: its offset from the step's start."""
        return self.replay.offsets_ns[i % len(self.replay.rows)]
