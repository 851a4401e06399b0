"""Per-request figures, each written once, as ClickHouse expressions over one row of `requests`.

DESIGN §3 defines them; every query that needs one starts with `WITH {REQUEST_FIGURES}` and names
it by its alias: the materialized view that keeps the per-step digests (schema.DIGEST_SELECT, and
through it every single-run report), goodput (views.STEP_GOODPUT) and the fleet report
(reports/fleet.py, SCENARIO_SQL). The aliases carry a `req_` prefix so that they never shadow a column
or an output name of the query that uses them (`ttft_ms` is a report column, `output_tokens` both).

  req_ttft_ms        TTFT: send -> first content-bearing chunk
  req_e2e_ms         E2E: send -> last byte of the stream
  req_has_tpot       TPOT is defined: more than one output token
  req_tpot_ms        TPOT: (E2E - TTFT) / (output tokens - 1)
  req_gap_ms         chunk-ITL: the gaps between consecutive content-bearing chunks
  req_gap_tokens     the tokens the chunk that closes each gap carried
  req_gap_token_ms   ITL per token: each gap / its chunk's tokens (gaps whose chunk carried no token left out)
  req_itl_ms         the request's ITL, as goodput bounds it: the mean of its gaps (0 with one chunk)
  req_start_ns       the send, as Unix nanoseconds
  req_end_ns         the last byte, as Unix nanoseconds (a step's wall time runs from its first start to its last end)

By kind (reasoning models and tool calls; the kinds are agent/stream.py's, 0 answer, 1 reasoning, 2 tool call):
  req_kinds          each chunk's kind (a row without kinds: every chunk an answer)
  req_answer_ns      first answer chunk; a row from an agent that stored no kinds: its first chunk; -1 when none
  req_has_answer     an answer chunk came
  req_ttfa_ms        time to first answer token (TTFA): send -> first answer chunk
  req_reasoning_chunks / req_answer_chunks   chunks of each kind
  req_reasoning_tokens   the tokens the reasoning chunks carried
  req_reasoning_ms   reasoning duration: first -> last reasoning chunk (requests with a reasoning chunk)
  req_answer_gap_ms / req_reasoning_gap_ms   ITL of the answer, of the reasoning: the gaps between
                     consecutive chunks of that kind
  req_silent_reasoning   the model reasoned without streaming it: no reasoning came, and the first chunk
                     carried at least SILENT_REASONING_TOKENS tokens by the server's continuous usage
                     (one long silence, then the answer; an agent's own count cannot tell)
  req_tool_call_ms   an agent turn: send -> the last tool-call chunk (the complete tool call)
"""

from __future__ import annotations

SILENT_REASONING_TOKENS = 16  # a first chunk this large is hidden reasoning, not a multi-token chunk (speculative
                              # decoding and stream coalescing put a handful of tokens in one chunk)


def _gaps_of_kind(kind: int) -> str:
    return (f"arrayMap(g -> g / 1e6, arrayPopFront(arrayDifference("
            f"arrayFilter((o, k) -> k = {kind}, chunk_offset_ns, req_kinds))))")


_FIGURES = (
    ("req_ttft_ms", "ttft_ns / 1e6"),
    ("req_e2e_ms", "e2e_ns / 1e6"),
    ("req_has_tpot", "output_tokens > 1"),
    ("req_tpot_ms", "(e2e_ns - ttft_ns) / 1e6 / (output_tokens - 1)"),
    ("req_gap_ms", "arrayMap(g -> g / 1e6, arrayPopFront(arrayDifference(chunk_offset_ns)))"),
    ("req_gap_tokens", "arrayPopFront(chunk_tokens)"),
    ("req_gap_token_ms", "arrayMap((g, k) -> g / k, arrayFilter((g, k) -> k > 0, req_gap_ms, req_gap_tokens), "
                         "arrayFilter(k -> k > 0, req_gap_tokens))"),
    ("req_itl_ms", "if(empty(req_gap_ms), 0, arrayAvg(req_gap_ms))"),
    ("req_start_ns", "toUnixTimestamp64Nano(start_time)"),
    ("req_end_ns", "toUnixTimestamp64Nano(start_time) + e2e_ns"),
    ("req_kinds", "if(empty(chunk_kinds), arrayWithConstant(length(chunk_offset_ns), toUInt8(0)), chunk_kinds)"),
    ("req_answer_ns", "if(first_answer_ns > 0, first_answer_ns, "
                      "if(empty(chunk_kinds) AND first_reasoning_ns = 0 AND first_tool_call_ns = 0, ttft_ns, -1))"),
    ("req_has_answer", "req_answer_ns >= 0"),
    ("req_ttfa_ms", "req_answer_ns / 1e6"),
    ("req_reasoning_chunks", "countEqual(chunk_kinds, 1)"),
    ("req_answer_chunks", "countEqual(req_kinds, 0)"),
    ("req_reasoning_tokens", "arraySum(arrayFilter((t, k) -> k = 1, chunk_tokens, req_kinds))"),
    ("req_reasoning_ms", "if(req_reasoning_chunks > 0, (arrayMax(arrayFilter((o, k) -> k = 1, chunk_offset_ns, "
                         "req_kinds)) - first_reasoning_ns) / 1e6, 0)"),
    ("req_answer_gap_ms", _gaps_of_kind(0)),
    ("req_reasoning_gap_ms", _gaps_of_kind(1)),
    ("req_silent_reasoning", f"first_reasoning_ns = 0 AND notEmpty(chunk_tokens) "
                             f"AND chunk_tokens[1] >= {SILENT_REASONING_TOKENS}"),
    ("req_tool_call_ms", "arrayMax(arrayFilter((o, k) -> k = 2, chunk_offset_ns, req_kinds)) / 1e6"),
)

# The WITH items defining every figure above (ClickHouse evaluates only those a query uses).
REQUEST_FIGURES = ",\n     ".join(f"{expression} AS {alias}" for alias, expression in _FIGURES)


# A request that met every SLO given, as bound parameters (inf: no such SLO): what goodput counts per step
# (views.STEP_GOODPUT) and per session (session_views.step_sessions_select: a session is good when every turn is).
# Written after `WITH {REQUEST_FIGURES},` and named by an alias.
# A bound that is not given (inf) is left out before the query runs (isInfinite of a bound parameter is a
# constant), so goodput reads only the columns of the SLOs given: no chunk offsets without an ITL SLO.
REQUEST_GOOD = """error_class = ''
     AND (isInfinite({ttft_ms:Float64}) OR req_ttft_ms <= {ttft_ms:Float64})
     AND (isInfinite({ttfa_ms:Float64}) OR if(req_has_answer, req_ttfa_ms, inf) <= {ttfa_ms:Float64})
     AND (isInfinite({e2e_ms:Float64}) OR req_e2e_ms <= {e2e_ms:Float64})
     AND (isInfinite({itl_ms:Float64}) OR req_itl_ms <= {itl_ms:Float64})
     AND (isInfinite({tpot_ms:Float64}) OR if(req_has_tpot, req_tpot_ms, 0) <= {tpot_ms:Float64})"""
