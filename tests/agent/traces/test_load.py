"""A trace made ready before the first request: bad lines skipped or refused, cut to its window, scaled, split
across a fleet's nodes with sessions kept together, and lengths past the server's context refused."""

from pathlib import Path

import pytest

from siliconbench.agent.traces.formats import TraceRow
from siliconbench.agent.traces.load import Replay, check_lengths, in_part, load_replay
from siliconbench.core.errors import ConfigError
from siliconbench.core.trace import TracePlan

FIXTURES = Path(__file__).parents[2] / "fixtures" / "traces"
GOOD = '{"timestamp": %d, "input_length": 8, "output_length": 2}\n'


def mooncake(tmp_path: Path, good: int, bad: int) -> str:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(GOOD % (i * 10) for i in range(good)) + "{oops\n" * bad)
    return str(path)


def test_auto_refuses_a_trace_with_more_than_one_percent_bad_lines_naming_them(tmp_path):
    with pytest.raises(ConfigError, match=r"2 of 100 lines are malformed \(2\.0%\) - line 99: not JSON.*--trace-bad-lines skip"):
        load_replay(TracePlan(file=mooncake(tmp_path, 98, 2), format="mooncake"))


def test_auto_replays_the_rest_at_one_percent_or_less_counting_the_skipped(tmp_path):
    replay = load_replay(TracePlan(file=mooncake(tmp_path, 99, 1), format="mooncake"))
    assert len(replay.rows) == 99 and replay.skipped == 1


def test_refuse_refuses_a_single_bad_line(tmp_path):
    with pytest.raises(ConfigError, match="1 of 100 lines"):
        load_replay(TracePlan(file=mooncake(tmp_path, 99, 1), format="mooncake", bad_lines="refuse"))


def test_skip_replays_whatever_could_be_read(tmp_path):
    replay = load_replay(TracePlan(file=mooncake(tmp_path, 5, 5), format="mooncake", bad_lines="skip"))
    assert len(replay.rows) == 5 and replay.skipped == 5


def test_an_unreadable_file_and_a_file_of_another_format_are_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read trace"):
        load_replay(TracePlan(file=str(tmp_path / "none.csv"), format="azure"))
    with pytest.raises(ConfigError, match="is not a azure trace"):
        load_replay(TracePlan(file=str(FIXTURES / "burstgpt.csv"), format="azure"))


def test_scales_stretch_the_offsets_by_time_scale_over_rate_scale():
    plan = TracePlan(file=str(FIXTURES / "burstgpt.csv"), format="burstgpt", time_scale=0.5, rate_scale=2.0)
    replay = load_replay(plan)
    assert replay.offsets_ns[:3] == (0, 10_000_000_000, 28_250_000_000)  # 0, 40, 113 s times 0.25


def test_a_window_keeps_its_arrivals_timed_from_its_start():
    replay = load_replay(TracePlan(file=str(FIXTURES / "burstgpt.csv"), format="burstgpt", window="100:200"))
    assert [r.line for r in replay.rows] == [4, 5, 6, 7]  # at 113, 125, 153 and 197 s of the trace
    assert replay.offsets_ns == (13_000_000_000, 25_000_000_000, 53_000_000_000, 97_000_000_000)


def test_an_empty_window_is_refused_with_the_traces_span():
    with pytest.raises(ConfigError, match=r"no request within window 900:1000.*span 306\.0 s"):
        load_replay(TracePlan(file=str(FIXTURES / "burstgpt.csv"), format="burstgpt", window="900:1000"))


def test_a_fleets_parts_cover_the_trace_once_and_keep_each_session_on_one_node():
    file = str(FIXTURES / "mooncake.jsonl")
    rows = load_replay(TracePlan(file=file, format="mooncake")).rows
    nodes = {r.line: [n for n in (1, 2, 3) if in_part(r.session, n, 3)] for r in rows}
    assert all(len(n) == 1 for n in nodes.values())  # each request on exactly one node
    by_session: dict[str, set[int]] = {}
    for r in rows:
        by_session.setdefault(r.session, set()).add(nodes[r.line][0])
    assert all(len(homes) == 1 for homes in by_session.values())
    first = load_replay(TracePlan(file=file, format="mooncake", part="1/2")).rows
    second = load_replay(TracePlan(file=file, format="mooncake", part="2/2")).rows
    assert sorted(r.line for r in first + second) == list(range(1, 13))


def test_lengths_past_max_model_len_are_refused_with_their_count():
    rows = (TraceRow(1, 0.0, 100, 10), TraceRow(2, 0.1, 4000, 200), TraceRow(3, 0.2, 4090, 10))
    replay = Replay(rows, (0, 1, 2), 0, False)
    with pytest.raises(ConfigError, match=r"2 of 3 requests need more than the server's max_model_len of 4096.*line 2"):
        check_lengths(replay, 4096, "t.csv")
    check_lengths(replay, 0, "t.csv")  # a server that does not say: nothing to check
