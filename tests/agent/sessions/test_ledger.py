"""The client's model of the server's prefix cache: whole blocks from the first token, chained, never the
prompt's last token."""

from __future__ import annotations

from siliconbench.agent.sessions.ledger import BlockLedger


def test_nothing_is_expected_of_a_prompt_the_server_has_not_seen():
    assert BlockLedger(4).expected(list(range(20))) == 0


def test_a_prompt_reuses_the_whole_blocks_an_earlier_one_computed_but_never_its_last_token():
    ledger = BlockLedger(4)
    ledger.computed(list(range(12)))
    assert ledger.expected(list(range(12)) + [99, 98]) == 12
    assert ledger.expected(list(range(12))) == 8   # the same prompt again: its last token is computed
    assert ledger.expected(list(range(10)) + [7, 7, 7]) == 8  # a block that differs ends the reuse


def test_a_partly_computed_block_is_not_cached():
    ledger = BlockLedger(4)
    ledger.computed(list(range(7)))
    assert ledger.expected(list(range(20))) == 4


def test_blocks_are_keyed_by_everything_before_them():
    ledger = BlockLedger(4)
    ledger.computed([9, 9, 9, 9] + [1, 2, 3, 4])
    assert ledger.expected([8, 8, 8, 8] + [1, 2, 3, 4] + [0]) == 0


def test_an_unknown_block_size_counts_single_tokens():
    ledger = BlockLedger(0)
    ledger.computed([1, 2, 3])
    assert ledger.expected([1, 2, 5, 6]) == 2
