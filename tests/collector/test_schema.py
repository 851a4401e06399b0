"""The one declaration per table (collector/schema.py) covers the wire contract, is what the store
holds, and is what ingest builds, column by column by name."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from siliconbench.collector import ingest
from siliconbench.collector.schema import BATCH_ID, STEPS, TABLES, Table
from siliconbench.core.wire import pb
from tests.collector.test_service import record

FROM_MESSAGES = [t for t in TABLES.values() if t.message]
NOW = time.time_ns()


@pytest.mark.parametrize("table", FROM_MESSAGES, ids=lambda t: t.name)
def test_every_field_of_the_record_message_is_stored_or_says_why_not(table: Table):
    fields = {f.name for f in getattr(pb, table.message).DESCRIPTOR.fields}
    stored = {c.field for c in table.stored if c.field}
    assert fields - stored == set(table.not_stored), f"{table.message} fields with no column and no reason"
    assert not stored & set(table.not_stored)
    assert stored <= fields, f"columns of {table.name} name fields {table.message} does not have"


@pytest.mark.parametrize("table", TABLES.values(), ids=lambda t: t.name)
def test_every_column_has_a_source(table: Table):
    assert [c.name for c in table.stored if not (c.field or c.derived)] == []
    assert len(set(table.names)) == len(table.names)


@pytest.mark.parametrize("table", [t for t in TABLES.values() if t.batched], ids=lambda t: t.name)
def test_every_column_agents_write_has_an_arrow_type_for_ingest(table: Table):
    assert table.arrow_schema.names == [*table.names, BATCH_ID]


def test_the_store_holds_exactly_the_declared_columns_in_order(store):
    held = {}
    for table, name, type_ in store.query(
            "SELECT table, name, type FROM system.columns WHERE database = {db:String} ORDER BY table, position",
            {"db": store.location.database}).result_rows:
        held.setdefault(table, []).append((name, type_))
    for table in TABLES.values():
        assert held[table.name] == [(c.name, c.type) for c in table.stored]


def test_same_typed_columns_each_hold_their_own_field():
    """Every number of the record differs, so a column built from a neighbour's field would show."""
    expected = dict(step=11, concurrency=22, repetition=33, prompt_tokens=44, output_tokens=55, http_status=201,
                    ttft_ns=1_000_000, e2e_ns=5_000_000, dispatch_delay_ns=7, tokens_counted=True,
                    finish_reason="stop", error_class="", error_message="m", chunk_tokens=[27, 28])
    r = record("r", 0, **expected)
    built = ingest.tables_of(pb.Batch(seq=1, batch_id="b/1", requests=[r]), "agent-x")["requests"].to_pylist()[0]
    assert {name: built[name] for name in expected} == expected
    assert (built["run_id"], built["request_id"], built["agent_id"], built[BATCH_ID]) == ("r", "r/0/0", "agent-x", "b/1")
    assert built["chunk_offset_ns"] == [1_000_000, 3_000_000]


def test_a_table_is_assembled_by_column_name_whatever_order_the_columns_come_in():
    steps = [pb.StepEvent(run_id="r", step=1, concurrency=2, repetition=3, requests=4, start_unix_ns=NOW,
                          end_unix_ns=NOW + 5, rate_rps=6.0, agent_cpu_pct=7.0, loop_lag_p99_ms=8.0, mode="closed")]
    columns = ingest._steps(steps, NOW)
    forward = ingest._assemble(STEPS, columns, "a", "b/1")
    backward = ingest._assemble(STEPS, dict(reversed(columns.items())), "a", "b/1")
    assert forward.equals(backward)
    row = forward.to_pylist()[0]
    assert (row["step"], row["concurrency"], row["repetition"], row["requests"]) == (1, 2, 3, 4)
    assert (row["rate_rps"], row["agent_cpu_pct"], row["loop_lag_p99_ms"]) == (6.0, 7.0, 8.0)
    assert forward.schema == STEPS.arrow_schema


def test_a_column_left_out_or_not_declared_is_refused_not_shifted():
    columns = ingest._steps([pb.StepEvent(run_id="r", start_unix_ns=NOW, end_unix_ns=NOW)], NOW)
    with pytest.raises(KeyError, match=r"no steps\.rate_rps"):
        ingest._assemble(STEPS, {k: v for k, v in columns.items() if k != "rate_rps"}, "a", "b/1")
    with pytest.raises(KeyError, match="does not declare"):
        ingest._assemble(STEPS, {**columns, "rate": pa.array([1.0])}, "a", "b/1")


def test_rows_for_store_insert_are_built_by_name():
    row = STEPS.row(**{name: name for name in reversed(STEPS.names)})
    assert row == STEPS.names
    with pytest.raises(KeyError, match="missing"):
        STEPS.row(run_id="r")
