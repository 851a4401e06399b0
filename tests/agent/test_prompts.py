"""Token-id prompts do not hit a prefix cache by accident: unique per run and request by default,
reproducible from the key, the same in every run only when the plan asks for shared prompts."""

from __future__ import annotations

from siliconbench.agent.target import UNIQUE_PREFIX_TOKENS, PromptBook

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
