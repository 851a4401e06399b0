"""Each trace format read into rows: arrival offsets from the first arrival, exact lengths, hash ids where the
format has them, and every line that cannot be read counted with its number."""

from pathlib import Path

import pytest

from siliconbench.agent.traces.formats import parse_trace

FIXTURES = Path(__file__).parents[2] / "fixtures" / "traces"


def read(name: str, kind: str):
    return parse_trace((FIXTURES / name).read_text(), kind)


def test_mooncake_reads_milliseconds_lengths_and_hash_ids():
    trace = read("mooncake.jsonl", "mooncake")
    assert len(trace.rows) == 12 and not trace.bad
    third = trace.rows[2]
    assert (third.line, third.offset_s, third.input_tokens, third.output_tokens) == (3, 0.16, 1300, 16)
    assert third.hash_ids == (100, 103, 104)
    assert trace.has_prefixes


def test_mooncake_keeps_a_conversation_together_by_its_root_hash_id():
    rows = read("mooncake.jsonl", "mooncake").rows
    assert rows[0].session == rows[2].session == rows[5].session == "h100"
    assert rows[1].session != rows[0].session


def test_azure_reads_dates_as_offsets_from_the_first_request():
    trace = read("azure.csv", "azure")
    assert len(trace.rows) == 8 and not trace.bad and not trace.has_prefixes
    assert trace.rows[0].offset_s == 0.0
    assert trace.rows[1].offset_s == pytest.approx(0.059766, abs=1e-6)
    assert (trace.rows[2].input_tokens, trace.rows[2].output_tokens) == (879, 8)
    assert trace.rows[2].line == 4  # the header is line 1


def test_burstgpt_reads_seconds_and_request_and_response_tokens():
    trace = read("burstgpt.csv", "burstgpt")
    assert [r.offset_s for r in trace.rows[:3]] == [0.0, 40.0, 113.0]
    assert (trace.rows[1].input_tokens, trace.rows[1].output_tokens) == (1087, 83)
    assert not trace.has_prefixes


def test_siliconbench_format_keeps_its_session_and_hash_ids():
    trace = read("siliconbench.jsonl", "siliconbench")
    assert [r.offset_s for r in trace.rows] == [0.0, 0.0355, 0.08025, 0.14, 0.19]
    assert trace.rows[0].session == trace.rows[2].session == "sx"
    assert trace.rows[1].hash_ids == () and trace.rows[2].hash_ids == (1, 2, 3)


def test_rows_are_sorted_by_arrival_and_keep_their_line_numbers():
    text = '{"timestamp": 50, "input_length": 4, "output_length": 1}\n{"timestamp": 10, "input_length": 5, "output_length": 1}\n'
    rows = parse_trace(text, "mooncake").rows
    assert [(r.line, r.offset_s) for r in rows] == [(2, 0.0), (1, 0.04)]


@pytest.mark.parametrize("line, why", [
    ("not json", "not JSON"),
    ('{"timestamp": 1, "input_length": 0, "output_length": 3}', "input_length 0 is outside"),
    ('{"timestamp": 1, "input_length": 2.5, "output_length": 3}', "whole number"),
    ('{"timestamp": -4, "input_length": 2, "output_length": 3}', "non-negative"),
    ('{"timestamp": 1, "output_length": 3}', "no 'input_length'"),
    ('{"timestamp": 1, "input_length": 2, "output_length": 3, "hash_ids": ["a"]}', "hash_ids"),
])
def test_a_malformed_mooncake_line_is_counted_with_its_number_and_why(line, why):
    text = '{"timestamp": 0, "input_length": 4, "output_length": 1}\n' + line + "\n"
    trace = parse_trace(text, "mooncake")
    assert len(trace.rows) == 1
    assert [b.line for b in trace.bad] == [2] and why in trace.bad[0].why


def test_a_burstgpt_failed_request_with_no_response_tokens_is_a_bad_line():
    text = ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
            "1,ChatGPT,100,0,100,Conversation log\n2,ChatGPT,100,5,105,Conversation log\n")
    trace = parse_trace(text, "burstgpt")
    assert len(trace.rows) == 1 and trace.bad[0].line == 2 and "Response tokens 0" in trace.bad[0].why


def test_a_csv_row_of_the_wrong_width_is_a_bad_line():
    trace = parse_trace("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,5\n", "azure")
    assert trace.bad[0].line == 2 and "columns" in trace.bad[0].why


def test_a_csv_without_the_formats_columns_is_not_that_format():
    with pytest.raises(ValueError, match="ContextTokens"):
        parse_trace("Timestamp,Model,Request tokens,Response tokens\n1,a,2,3\n", "azure")
