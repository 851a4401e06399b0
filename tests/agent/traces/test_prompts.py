"""A trace's prompts: exact lengths, each hash id the same block of token ids wherever it appears, nothing shared
that the trace does not share, and the reuse each request should get known before it is sent."""

from pathlib import Path

from siliconbench.agent.traces.formats import TraceRow
from siliconbench.agent.traces.load import Replay, load_replay
from siliconbench.agent.traces.prompts import TraceBook, expected_reuse
from siliconbench.core.trace import TracePlan
from siliconbench.core.wire import pb

FIXTURES = Path(__file__).parents[2] / "fixtures" / "traces"
IDS = list(range(1000, 4000))


def replay_of(*rows: tuple[int, tuple[int, ...]]) -> Replay:
    return Replay(tuple(TraceRow(i + 1, i * 0.1, n, 4, ids) for i, (n, ids) in enumerate(rows)),
                  tuple(i * 100_000_000 for i in range(len(rows))), 0, any(ids for _, ids in rows))


def book(replay: Replay, block: int = 8, server_block: int = 4, warmup: int = 2) -> TraceBook:
    prompts = TraceBook(IDS, replay, block, server_block, warmup, 2, 16)
    prompts.salted("seed/run")
    return prompts


def test_every_prompt_has_exactly_its_rows_input_length():
    trace = load_replay(TracePlan(file=str(FIXTURES / "mooncake.jsonl"), format="mooncake"))
    prompts = TraceBook(IDS, trace, 512, 16, 2, 1, 16)
    prompts.salted("k")
    assert [len(prompts.prompt(2 + i)) for i in range(12)] == [r.input_tokens for r in trace.rows]


def test_a_shared_hash_id_is_the_same_block_of_token_ids_in_every_prompt():
    prompts = book(replay_of((20, (1, 2, 3)), (12, (1, 5))))
    first, second = prompts.prompt(2), prompts.prompt(3)
    assert first[:8] == second[:8] == prompts.block(1)
    assert first[8:16] != second[8:16]


def test_different_hash_ids_differ_from_their_first_tokens():
    prompts = book(replay_of((8, (1,)), (8, (2,))))
    assert prompts.block(1)[:4] != prompts.block(2)[:4]


def test_requests_without_hash_ids_share_nothing_not_even_across_replays():
    prompts = book(replay_of((12, ()), (12, ())))
    seen = [prompts.prompt(k) for k in range(2, 6)]  # two replays of two rows
    assert len({tuple(p[:4]) for p in seen}) == 4


def test_expected_reuse_counts_leading_blocks_an_earlier_request_sent_in_whole_server_blocks():
    replay = replay_of((20, (1, 2, 3)), (21, (1, 2, 9)), (30, (7, 2, 3)), (10, (1, 2)))
    # the second shares blocks 1, 2 (16 tokens); the third's chain starts elsewhere (nothing); the fourth
    # sends 10 tokens of blocks 1, 2: 9 may be reused (the last is computed), 8 in whole blocks of 4
    assert expected_reuse(replay, 8, 4, 1) == [0, 16, 0, 8]


def test_a_partial_block_is_reused_only_as_far_as_it_was_sent():
    replay = replay_of((12, (1, 2)), (20, (1, 2, 3)))  # the first sent 4 tokens of block 2
    assert expected_reuse(replay, 8, 1, 1) == [0, 12]


def test_a_second_replay_reuses_every_block_the_first_sent():
    replay = replay_of((20, (1, 2, 3)), (16, (4, 5)))
    assert expected_reuse(replay, 8, 4, 2) == [0, 0, 16, 12]  # 19 and 15 tokens may hit: 16 and 12 in blocks


def test_a_server_block_size_that_is_unknown_leaves_the_reuse_in_tokens():
    assert expected_reuse(replay_of((20, (1, 2)), (20, (1, 2))), 8, 0, 1) == [0, 16]


def test_annotate_sets_the_trace_line_and_the_expected_reuse():
    prompts = book(replay_of((20, (1, 2, 3)), (21, (1, 2, 9))))
    record = pb.RequestRecord()
    prompts.annotate(record, 3)
    assert (record.trace_line, record.expected_cached_tokens) == (2, 16)
