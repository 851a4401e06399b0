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
  req_start_ns       the send, as Unix nanoseconds
  req_end_ns         the last byte, as Unix nanoseconds (a step's wall time runs from its first start to its last end)
"""

from __future__ import annotations

_FIGURES = (
    ("req_ttft_ms", "ttft_ns / 1e6"),
    ("req_e2e_ms", "e2e_ns / 1e6"),
    ("req_has_tpot", "output_tokens > 1"),
    ("req_tpot_ms", "(e2e_ns - ttft_ns) / 1e6 / (output_tokens - 1)"),
    ("req_gap_ms", "arrayMap(g -> g / 1e6, arrayPopFront(arrayDifference(chunk_offset_ns)))"),
    ("req_gap_tokens", "arrayPopFront(chunk_tokens)"),
    ("req_gap_token_ms", "arrayMap((g, k) -> g / k, arrayFilter((g, k) -> k > 0, req_gap_ms, req_gap_tokens), "
                         "arrayFilter(k -> k > 0, req_gap_tokens))"),
    ("req_start_ns", "toUnixTimestamp64Nano(start_time)"),
    ("req_end_ns", "toUnixTimestamp64Nano(start_time) + e2e_ns"),
)

# The WITH items defining every figure above (ClickHouse evaluates only those a query uses).
REQUEST_FIGURES = ",\n     ".join(f"{expression} AS {alias}" for alias, expression in _FIGURES)
