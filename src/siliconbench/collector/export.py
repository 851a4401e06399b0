"""Export raw rows of one table as CSV or Parquet, written by ClickHouse itself (`raw_stream`), so
no row passes through Python objects. Filters are bound parameters; the table name is whitelisted."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import BinaryIO, cast

from siliconbench.collector.errors import InvalidOption, RunNotFound
from siliconbench.collector.store import Store

FORMATS = {"csv": "CSVWithNames", "parquet": "Parquet", "trace": "JSONEachRow"}
# `--format trace`: a run's own arrivals as a siliconbench trace (agent/traces/formats.py), which `agent run
# --trace FILE --trace-format siliconbench` replays: each request's send time after its run's first send, and
# the lengths the server counted (requests the server never answered have none, and are left out).
_TRACE_SQL = """SELECT round((toUnixTimestamp64Nano(start_time)
        - min(toUnixTimestamp64Nano(start_time)) OVER (PARTITION BY run_id)) / 1e6, 3) AS offset_ms,
    prompt_tokens AS input_tokens, output_tokens
FROM {db}.requests WHERE has({runs:Array(String)}, run_id) AND prompt_tokens > 0 AND output_tokens > 0
ORDER BY run_id, start_time"""
# table -> the filter that keeps the selected runs' rows
TABLES = {
    "requests": "has({runs:Array(String)}, run_id)",
    "steps": "has({runs:Array(String)}, run_id)",
    "runs": "has({runs:Array(String)}, run_id)",
    "device_samples": "has({runs:Array(String)}, run_id)",
    "server_metrics": "has({runs:Array(String)}, run_id)",
    "search_probes": "has({runs:Array(String)}, run_id)",
    "searches": "has({runs:Array(String)}, run_id)",
    "nodes": "agent_id IN (SELECT agent_id FROM {db}.runs WHERE has({runs:Array(String)}, run_id))",
    "prices": "1",
}
ORDER = {"requests": "run_id, agent_id, step, request_id", "device_samples": "agent_id, time", "prices": "instance_type",
         "nodes": "agent_id"}


def selected_runs(store: Store, runs: tuple[str, ...], scenarios: tuple[str, ...]) -> list[str] | None:
    """The run ids to export; None means every run."""
    if not runs and not scenarios:
        return None
    found = [r[0] for r in store.query(
        "SELECT DISTINCT run_id FROM {db}.runs WHERE has({runs:Array(String)}, run_id) "
        "OR has({scenarios:Array(String)}, scenario)", {"runs": list(runs), "scenarios": list(scenarios)}).result_rows]
    if not found or set(runs) - set(found):
        missing = ", ".join(sorted(set(runs) - set(found))) or ", ".join(scenarios)
        raise RunNotFound(f"no run matches {missing} in {store.location.shown}; `siliconbench-collector runs list` lists them")
    return found


def export_rows(store: Store, table: str, fmt: str, output: Path | None,
                runs: tuple[str, ...] = (), scenarios: tuple[str, ...] = ()) -> None:
    if table not in TABLES:
        raise InvalidOption(f"--table {table!r} is not one of {', '.join(TABLES)}")
    if fmt.lower() not in FORMATS:
        raise InvalidOption(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt.lower() == "parquet" and output is None:
        raise InvalidOption("--format parquet writes a binary file: give --output FILE")
    ids = selected_runs(store, runs, scenarios)
    if fmt.lower() == "trace" and (table != "requests" or ids is None or len(ids) != 1):
        raise InvalidOption("--format trace writes one run's arrivals: give --table requests and --run RUN_ID")
    where = TABLES[table] if ids is not None else "1"
    sql = (_TRACE_SQL if fmt.lower() == "trace"
           else f"SELECT * FROM {{db}}.{table} WHERE {where} ORDER BY {ORDER.get(table, 'run_id')}")
    with store.mapped_errors():
        # a sync client's raw stream is a readable binary file (the StreamContext in its type is the async client's)
        stream = cast(BinaryIO, store.client().raw_stream(store.sql(sql), parameters={"runs": ids or []},
                                                          fmt=FORMATS[fmt.lower()]))
    if output is None:
        shutil.copyfileobj(stream, sys.stdout.buffer)
        sys.stdout.flush()
        return
    try:
        with open(output, "wb") as handle:
            shutil.copyfileobj(stream, handle)
    except OSError as exc:
        raise InvalidOption(f"cannot write {output}: {exc.strerror}") from None
