"""Validation of every message the collector receives, by example and by fuzzing (hypothesis):
malformed bytes and random field values never crash the collector, and an invalid message never
becomes a row."""

from __future__ import annotations

import math
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siliconbench.collector.errors import InvalidBatch
from siliconbench.collector.ingest import MAX_ID_CHARS, tables_of
from siliconbench.collector.service import TelemetryService
from siliconbench.core.wire import pb
from tests.collector.test_service import count, record

NOW = time.time_ns()
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT32 = st.integers(0, 2**32 - 1)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def batch_of(**lists) -> pb.Batch:
    return pb.Batch(seq=1, batch_id="a/b/1", **lists)


def test_a_valid_batch_becomes_one_table_per_destination():
    tables = tables_of(batch_of(requests=[record("r", 0), record("r", 1)],
                                samples=[pb.DeviceSample(run_id="r", time_unix_ns=NOW, source="nvml", device="0",
                                                         values={"power_w": 300.0, "util_gpu_pct": 90.0})]), "a")
    assert tables["requests"].num_rows == 2
    assert tables["device_samples"].num_rows == 2
    assert tables["requests"].column("chunk_offset_ns").to_pylist()[0] == [1_000_000, 3_000_000]


@pytest.mark.parametrize("overrides, reason", [
    (dict(e2e_ns=-1), "negative duration"),
    (dict(ttft_ns=2_000_000), "differs from the first chunk"),
    (dict(chunk_offset_ns=[1_000_000, 2_000_000, 3_000_000]), "as many chunk offsets"),
    (dict(chunk_offset_ns=[1_000_000, 500_000], chunk_tokens=[1, 1]), "not ordered"),
    (dict(e2e_ns=2_000_000), "not within [0, e2e_ns]"),
    (dict(start_unix_ns=NOW + 10 * 86_400 * 10**9), "not a plausible UTC time"),
    (dict(request_id="x" * (MAX_ID_CHARS + 1)), "characters long"),
    (dict(request_id=""), "request_id is empty"),
    (dict(http_status=7000), "not an HTTP status"),
    (dict(chunk_offset_ns=[], chunk_tokens=[]), "no chunk arrived"),
])
def test_a_broken_request_record_is_rejected_naming_the_rule(overrides, reason):
    with pytest.raises(InvalidBatch, match=reason.replace("[", r"\[").replace("]", r"\]")):
        tables_of(batch_of(requests=[record("r", 0), record("r", 1, **overrides)]), "a")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_sample_value_is_rejected(value):
    sample = pb.DeviceSample(run_id="r", time_unix_ns=NOW, source="nvml", device="0", values={"power_w": value})
    with pytest.raises(InvalidBatch, match="only finite numbers"):
        tables_of(batch_of(samples=[sample]), "a")


def test_a_step_that_ends_before_it_starts_is_rejected():
    step = pb.StepEvent(run_id="r", step=1, start_unix_ns=NOW, end_unix_ns=NOW - 1)
    with pytest.raises(InvalidBatch, match="ends before it starts"):
        tables_of(batch_of(steps=[step]), "a")


def test_a_batch_without_id_is_rejected():
    with pytest.raises(InvalidBatch, match="no batch_id"):
        tables_of(pb.Batch(seq=1, requests=[record("r", 0)]), "a")


def oracle_accepts(r: pb.RequestRecord) -> bool:
    """The request rules written plainly, one record at a time (the collector checks them vectorised)."""
    offsets, tokens = list(r.chunk_offset_ns), list(r.chunk_tokens)
    if not r.request_id or len(r.request_id) > MAX_ID_CHARS or len(r.run_id) > MAX_ID_CHARS:
        return False
    if r.e2e_ns < 0 or r.ttft_ns < -1 or r.ttft_ns > r.e2e_ns or len(offsets) != len(tokens):
        return False
    if offsets:
        if r.ttft_ns != offsets[0] or offsets[0] < 0 or offsets[-1] > r.e2e_ns:
            return False
        if any(b < a for a, b in zip(offsets, offsets[1:])):
            return False
    elif r.ttft_ns != -1:
        return False
    if max(tokens, default=0) > 10**7 or r.prompt_tokens > 10**7 or r.output_tokens > 10**7 or r.http_status > 999:
        return False
    if not -(10**9) <= r.dispatch_delay_ns <= 86_400 * 10**9:
        return False
    return 1_577_836_800 * 10**9 <= r.start_unix_ns <= time.time_ns() + 86_400 * 10**9


small_ns = st.integers(-5, 10_000)
requests = st.builds(
    pb.RequestRecord, run_id=st.text(max_size=3), request_id=st.text(max_size=260),
    ttft_ns=st.one_of(small_ns, INT64), e2e_ns=st.one_of(small_ns, INT64),
    chunk_offset_ns=st.lists(st.one_of(small_ns, INT64), max_size=6), chunk_tokens=st.lists(UINT32, max_size=6),
    start_unix_ns=st.one_of(st.just(NOW), INT64), http_status=st.one_of(st.just(200), UINT32),
    prompt_tokens=UINT32, output_tokens=UINT32, dispatch_delay_ns=st.one_of(st.just(0), INT64))


@FUZZ
@given(st.lists(requests, min_size=1, max_size=4))
def test_random_request_records_are_accepted_exactly_when_every_rule_holds(records):
    batch = batch_of(requests=records)
    expected = all(oracle_accepts(r) for r in records)
    try:
        tables = tables_of(batch, "a")
    except InvalidBatch:
        assert not expected
        return
    assert expected
    assert tables["requests"].num_rows == len(records)


floats = st.floats(allow_nan=True, allow_infinity=True)
samples = st.builds(pb.DeviceSample, run_id=st.text(max_size=3), time_unix_ns=st.one_of(st.just(NOW), INT64),
                    source=st.text(max_size=5), device=st.text(max_size=300),
                    values=st.dictionaries(st.text(max_size=5), floats, max_size=4))
steps = st.builds(pb.StepEvent, run_id=st.text(max_size=3), start_unix_ns=st.one_of(st.just(NOW), INT64),
                  end_unix_ns=st.one_of(st.just(NOW), INT64), rate_rps=floats, agent_cpu_pct=floats,
                  loop_lag_p99_ms=floats)
metrics = st.builds(pb.ServerMetric, run_id=st.text(max_size=3), name=st.text(max_size=300),
                    start_value=floats, end_value=floats)
runs = st.builds(pb.RunEvent, run_id=st.text(max_size=3), phase=st.sampled_from([0, 1, 2]),
                 time_unix_ns=st.one_of(st.just(NOW), INT64), config_json=st.text(max_size=20))


@FUZZ
@given(st.lists(samples, max_size=3), st.lists(steps, max_size=2), st.lists(metrics, max_size=2),
       st.lists(runs, max_size=2))
def test_random_batches_are_either_rejected_or_hold_only_finite_plausible_values(s, t, m, r):
    try:
        tables = tables_of(batch_of(samples=s, steps=t, server_metrics=m, runs=r), "a")
    except InvalidBatch:
        return
    for table in tables.values():
        for column in table.columns:
            if column.type in ("double",):
                assert all(math.isfinite(v) for v in column.to_pylist())


@pytest.fixture(scope="module")
def service(store):
    svc = TelemetryService(store, store_threads=1)
    yield svc
    svc.close()


def parse_and_store(service: TelemetryService, agent: str, raw: bytes) -> None:
    """What a stream does with one message, synchronously: parse and check, then insert (alone)."""
    batch = service.parse(agent, raw)
    if not isinstance(batch, pb.RunProgress):
        assert service.inserter.write([batch]) == {}


@FUZZ
@given(st.binary(max_size=200))
def test_malformed_bytes_never_crash_the_collector_nor_store_a_row(service, store, data):
    message = pb.AgentMessage(batch=batch_of(requests=[record("fuzz-bytes", 0)]))
    raw = message.SerializeToString()
    mutated = (raw[: len(data) % len(raw)] + data)[:300]
    try:
        parse_and_store(service, "fuzz-agent", mutated)
    except InvalidBatch:
        pass
    # whatever parsed as a valid batch was stored under its own run id; the seeded run only if intact
    if mutated != raw:
        assert count(store, "requests", "fuzz-bytes") in (0, 1)


@FUZZ
@given(st.lists(requests, min_size=1, max_size=3))
def test_no_row_is_written_from_an_invalid_message(service, store, records):
    run = f"fuzz-{uuid.uuid4().hex[:12]}"  # one per example: a valid example must not count for the next
    for r in records:
        r.run_id = run
    batch = pb.Batch(seq=1, batch_id=f"fuzz/{run}", requests=records)
    try:
        parse_and_store(service, "fuzz-agent", pb.AgentMessage(batch=batch).SerializeToString())
    except InvalidBatch:
        assert count(store, "requests", run) == 0
