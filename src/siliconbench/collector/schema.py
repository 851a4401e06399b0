"""The ClickHouse schema, version 1: one declaration per table, and everything else made from it.

Each table is declared once below (`TABLES`): its columns, each with its ClickHouse type, where its
value comes from (a field of the wire message the rows are made of, or how it is derived) and what
ingest checks of it before storing it. From that one declaration come the DDL (`DDL`), the column
lists (`Table.names`, the order `Store.insert` takes rows in and bench/ writes SQL in), and the Arrow
schema that ingest builds its column tables to, by column name (`Table.arrow_schema`);
tests/collector/test_schema.py checks that every field of each record message is stored or says why
not. Adding a field to the request record is a field in proto/, one `Column` in REQUESTS, and its use.

Every table that agents write carries the `batch_id` of the agent batch each row came in, with a
bloom-filter skip index on it: the collector merges batches from many agents into one insert per
table and, before inserting, drops the batches that table already holds (collector/group_insert.py),
so a replay is stored once whether it was first stored alone or merged. The tables also keep a
deduplication window, so an insert repeated with the same insert_deduplication_token is a no-op.
On a cluster, use ReplicatedMergeTree for the same tables (deduplication is on by default there).

SQL convention (all of the collector's SQL): tables are written `{db}.table` and `Store` puts the
database in (`Store.sql`); values are ClickHouse bound parameters, `{name:Type}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from siliconbench.collector.formulas import REQUEST_FIGURES
from siliconbench.collector.levels import SPREAD_LEVELS, sql_levels
# Limits of the wire contract, enforced by ingest; the agent checks what it copies from the target against
# the same ones (core/limits.py), so a hostile target costs one request, not a refused batch.
from siliconbench.core.limits import (MAX_ACCELERATORS, MAX_CONFIG_CHARS, MAX_ID_CHARS, MAX_TEXT_CHARS, MAX_TOKENS,
                                      MAX_TOOL_CALLS, MAX_TURNS)
from siliconbench.core.slo import GOODPUT_KEYS

SCHEMA_VERSION = 1  # still unreleased: v1 grows in place until the first release

_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class Check:
    """What ingest enforces on one column's values (collector/ingest.py raises InvalidBatch naming the
    field and the rule). Rules between columns (TTFT within E2E, ordered chunk offsets) live with the
    table's builder in ingest."""

    max_chars: int | None = None          # text: longest accepted
    low: int | None = None                # numbers: lowest accepted
    high: int | None = None               # numbers: highest accepted
    finite: bool = False                  # floats: NaN and infinities refused
    plausible_time: bool = False          # Unix ns between 2020 and a day ahead of the collector's clock
    why: str = ""                         # what a value outside [low, high] means, for the message


ID = Check(max_chars=MAX_ID_CHARS)
TEXT = Check(max_chars=MAX_TEXT_CHARS)
TIME = Check(plausible_time=True)
FINITE = Check(finite=True)
NOT_NEGATIVE = Check(finite=True, low=0)
TOKENS = Check(high=MAX_TOKENS)
NO_CHECK = Check()


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its ClickHouse type, and where its value comes from: copied from `field` of the
    table's wire message (`derived` empty), or made as `derived` says (from `field` when given)."""

    name: str
    type: str
    field: str | None = None
    derived: str = ""
    check: Check = NO_CHECK
    comment: str = ""
    default: str = ""

    @property
    def copied(self) -> bool:
        """The value is the message's field as is (after the check): ingest reads it generically."""
        return self.field is not None and not self.derived

    @property
    def message_field(self) -> str:
        """The field of the table's message the value comes from; TypeError for a column made otherwise."""
        if self.field is None:
            raise TypeError(f"column {self.name} is {self.derived}, not read from a message field")
        return self.field

    @property
    def arrow(self) -> pa.DataType:
        """The Arrow type ingest builds for this column (ClickHouse reads it into `type`)."""
        return arrow_type(self.type)

    def ddl(self) -> str:
        text = f"{self.name} {self.type}"
        if self.default:
            text += f" DEFAULT {self.default}"
        if self.comment:
            text += " COMMENT '" + self.comment.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return text


@dataclass(frozen=True, slots=True)
class Table:
    """One table: its columns in stored order, its engine clause, and, for a table made from a wire
    message, that message and the fields of it that are not stored, each with the reason."""

    name: str
    columns: tuple[Column, ...]
    engine: str
    message: str = ""                     # the siliconbench.telemetry.v1 message a row is made of
    not_stored: Mapping[str, str] = field(default_factory=dict)
    batched: bool = False                 # agents write it: rows carry BATCH_ID, indexed

    @property
    def names(self) -> list[str]:
        """The declared columns, in order: how `Store.insert` takes rows (it adds BATCH_ID, if any: the token)."""
        return [c.name for c in self.columns]

    @property
    def stored(self) -> tuple[Column, ...]:
        """Every column of the table, BATCH_ID included."""
        return (*self.columns, BATCH_ID_COLUMN) if self.batched else self.columns

    @property
    def arrow_schema(self) -> pa.Schema:
        """What ingest builds for the table (BATCH_ID included), column by column by name."""
        return pa.schema([pa.field(c.name, c.arrow) for c in self.stored])

    def column(self, name: str) -> Column:
        return next(c for c in self.stored if c.name == name)

    def row(self, **values) -> list:
        """A row for `Store.insert`, from values named by column; a missing or unknown name is an error."""
        missing = [n for n in self.names if n not in values]
        unknown = [n for n in values if n not in self.names]
        if missing or unknown:
            raise KeyError(f"{self.name} row: missing {missing}, unknown {unknown}")
        return [values[n] for n in self.names]

    @property
    def engine_name(self) -> str:
        """The engine without its arguments and clauses, as system.tables names it."""
        return re.split(r"[\s(]", self.engine, maxsplit=1)[0]

    def ddl(self) -> str:
        items = [c.ddl() for c in self.stored]
        if self.batched:
            items.append(f"INDEX {_BATCH_ID_INDEX}")
        body = ",\n    ".join(items)
        return f"CREATE TABLE IF NOT EXISTS {{db}}.{self.name} (\n    {body}\n) ENGINE = {self.engine}"


_ARROW = {"String": pa.string(), "Bool": pa.bool_(), "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(),
          "Int64": pa.int64(), "Float64": pa.float64(), "DateTime64(9, 'UTC')": pa.timestamp("ns", tz="UTC")}


def arrow_type(clickhouse: str) -> pa.DataType:
    """The Arrow type ClickHouse reads into a column of type `clickhouse` (LowCardinality and Enum take
    plain strings); TypeError for a type ingest never builds (aggregate states)."""
    inner = re.fullmatch(r"LowCardinality\((.*)\)", clickhouse)
    if inner:
        return arrow_type(inner.group(1))
    if clickhouse.startswith("Enum8("):
        return pa.string()
    array = re.fullmatch(r"Array\((.*)\)", clickhouse)
    if array:
        return pa.list_(arrow_type(array.group(1)))
    if clickhouse not in _ARROW:
        raise TypeError(f"no Arrow type is mapped for the ClickHouse type {clickhouse}: add it to schema._ARROW")
    return _ARROW[clickhouse]


_DEDUP = "SETTINGS non_replicated_deduplication_window = 100000"
BATCH_ID = "batch_id"
BATCH_ID_COLUMN = Column(BATCH_ID, "String", default="''", derived="Batch.batch_id of the batch that carried the row",
                         comment="the agent batch that carried the row (replays are recognised by it)")
_BATCH_ID_INDEX = "batch_id_idx batch_id TYPE bloom_filter(0.01) GRANULARITY 1"
_LC = "LowCardinality(String)"
_TIME = "DateTime64(9, 'UTC')"
_AGENT = Column("agent_id", _LC, derived="Hello.agent_id of the stream the batch came on")

# ---- prefix reuse, and a trace replay's requests, steps and runs (added to v1 in place, MIGRATIONS) ----
_OFFSET = Check(low=0, high=100 * _DAY_NS, why="not within [0, 100 days]")
_TRACE_REQUEST_COLUMNS = (
    Column("trace_line", "UInt32", "trace_line", default="0", comment="its line in the trace file; 0: not a trace's"),
    Column("trace_offset_ns", "Int64", "trace_offset_ns", check=_OFFSET, default="0",
           comment="its scheduled arrival after the step's start (the trace's time, scaled)"),
)
_TRACE_STEP_COLUMNS = (
    Column("trace_format", _LC, "trace_format", check=ID, default="''"),
    Column("trace_block_size", "UInt32", "trace_block_size", check=TOKENS, default="0",
           comment="tokens behind each hash id; 0: the trace has no prefix information"),
    Column("trace_time_scale", "Float64", "trace_time_scale", check=NOT_NEGATIVE, default="0"),
    Column("trace_rate_scale", "Float64", "trace_rate_scale", check=NOT_NEGATIVE, default="0"),
    Column("trace_window", "String", "trace_window", check=ID, default="''"),
)
_TRACE_RUN_COLUMNS = (
    Column("trace_file", "String", "trace_file", check=TEXT, default="''"),
    Column("trace_bad_lines", "UInt32", "trace_bad_lines", default="0", comment="malformed trace lines skipped"),
)

NODES = Table("nodes", (
    Column("agent_id", _LC, "agent_id", check=ID),
    Column("node_name", _LC, "node_name", check=ID),
    Column("instance_type", _LC, "instance_type", check=ID),
    Column("accelerator_kind", _LC, "accelerator_kind", derived="nvidia, neuron or none ('' is stored as none)"),
    Column("accelerator_count", "UInt32", "accelerator_count", check=Check(high=MAX_ACCELERATORS)),
    Column("accelerator_model", _LC, "accelerator_model", check=ID),
    Column("agent_version", "String", "agent_version", check=ID),
    Column("driver_version", "String", "driver_version", check=ID),
    Column("seen_at", _TIME, derived="the collector's clock when the Hello arrived"),
), "ReplacingMergeTree(seen_at) ORDER BY agent_id", message="Hello",
    not_stored={"scenario": "a label of the node's runs, not of the node: stored with each run (runs.scenario) "
                            "and fleet membership (run_nodes.scenario)"})

RUNS = Table("runs", (
    Column("run_id", "String", "run_id", check=ID),
    _AGENT,
    Column("phase", "Enum8('start' = 1, 'end' = 2)", "phase", derived="PHASE_START/PHASE_END; unspecified is refused"),
    Column("time", _TIME, "time_unix_ns", check=TIME),
    Column("target_url", "String", "target_url", check=TEXT),
    Column("model", _LC, "model", check=ID),
    Column("simulated", "Bool", "simulated"),
    Column("target_version", "String", "target_version", check=ID),
    Column("scenario", _LC, "scenario", check=ID),
    Column("config_json", "String", "config_json", check=Check(max_chars=MAX_CONFIG_CHARS)),
    Column("outcome", _LC, "outcome", check=ID, default="''",
           comment="end events: complete, interrupted or aborted; empty on start events and from older agents"),
    Column("outcome_detail", "String", "outcome_detail", check=TEXT, default="''"),
    Column("requests_sent", "UInt32", "requests_sent", default="0",
           comment="end events: request records the agent made; more than stored means some were not delivered"),
    *_TRACE_RUN_COLUMNS,
), f"MergeTree ORDER BY (run_id, agent_id, phase) {_DEDUP}", message="RunEvent", batched=True,
    not_stored={"search": "a search's answer: stored in searches, keyed by run_id"})

_BLOCK_SIZE = Column("block_size", "UInt32", "block_size", check=TOKENS, default="0",
                     comment="the server's KV-cache block size in tokens; 0: unknown")

# What a step's verdict rests on (core/verdict.py), added to v1 in place (MIGRATIONS adds them to older stores,
# where a step reads verdict '' and the figures 0).
_VERDICT_COLUMNS = (
    Column("client_delay_p99_ms", "Float64", "client_delay_p99_ms", check=NOT_NEGATIVE, default="0",
           comment="dispatch delay (send - scheduled; closed loop: slot free -> send) p99"),
    Column("client_delay_share", "Float64", "client_delay_share", check=NOT_NEGATIVE, default="0",
           comment="that p99 / the typical request time (closed) or arrival interval (open); 0: a cap's wait"),
    Column("agent_processes_cpu_pct", "Float64", "agent_processes_cpu_pct", check=NOT_NEGATIVE, default="0",
           comment="the agent's processes together, % of one core"),
    Column("node_cpu_pct", "Float64", "node_cpu_pct", check=NOT_NEGATIVE, default="0",
           comment="the node's CPU, % of all its cores"),
    Column("server_cpu_pct", "Float64", "server_cpu_pct", check=Check(finite=True, low=-1), default="-1",
           comment="the target's processes on this node, % of one core; -1: not on this node"),
    Column("verdict", _LC, "verdict", check=ID, default="''",
           comment="ok, client-limited or node busy (core/verdict.py); empty from older agents"),
)

STEPS = Table("steps", (
    Column("run_id", "String", "run_id", check=ID),
    _AGENT,
    Column("step", "UInt32", "step"),
    Column("concurrency", "UInt32", "concurrency"),
    Column("repetition", "UInt32", "repetition"),
    Column("start_time", _TIME, "start_unix_ns", check=TIME),
    Column("end_time", _TIME, "end_unix_ns", check=TIME),
    Column("requests", "UInt32", "requests"),
    Column("mode", _LC, "mode", check=ID),
    Column("rate_rps", "Float64", "rate_rps", check=NOT_NEGATIVE),
    Column("agent_cpu_pct", "Float64", "agent_cpu_pct", check=NOT_NEGATIVE),
    Column("loop_lag_p99_ms", "Float64", "loop_lag_p99_ms", check=NOT_NEGATIVE),
    Column("client_saturated", "Bool", "client_saturated"),
    _BLOCK_SIZE,
    *_VERDICT_COLUMNS,
    *_TRACE_STEP_COLUMNS,
), f"MergeTree ORDER BY (run_id, agent_id, step) {_DEDUP}", message="StepEvent", batched=True,
    not_stored={"search_probe": "a search's step: stored in search_probes, keyed by run_id and step"})

# ---- requests: what the stream said by kind (reasoning, answer, tool calls) and the model it named ----
# Added to v1 in place (MIGRATIONS adds them to older stores, where rows read as 'no such chunk').
_FIRST = Check(low=0, high=_DAY_NS, why="not within [0, 1 day]")
_ANSWER_COLUMNS = (
    Column("model", _LC, "model", check=ID, default="''",
           comment="the served model (base or adapter) the request named; empty from older agents"),
    Column("first_reasoning_ns", "Int64", "first_reasoning_ns", check=_FIRST, default="0",
           comment="first reasoning chunk (delta.reasoning_content or .reasoning); 0 when none came"),
    Column("first_answer_ns", "Int64", "first_answer_ns", check=_FIRST, default="0",
           comment="first answer chunk (text or delta.content); 0 when none came or from older agents"),
    Column("first_tool_call_ns", "Int64", "first_tool_call_ns", check=_FIRST, default="0",
           comment="first tool-call delta; 0 when none came"),
    Column("chunk_kinds", "Array(UInt8)", "chunk_kinds", derived="the list as sent: empty, or one per chunk offset",
           default="[]", comment="kind of each chunk: 0 answer, 1 reasoning, 2 tool call; empty: every chunk an answer"),
    Column("tool_calls", "UInt32", "tool_calls", check=Check(high=MAX_TOOL_CALLS), default="0"),
    Column("tool_calls_invalid", "UInt32", "tool_calls_invalid", check=Check(high=MAX_TOOL_CALLS), default="0",
           comment="tool calls whose joined argument fragments are not JSON"),
)

# ---- requests: multi-turn sessions and replayed traces (which conversation and turn; prefix reuse) ----
# Added to v1 in place (MIGRATIONS adds them to older stores, where rows read as outside any session).
_SESSION_COLUMNS = (
    Column("session_id", "String", "session_id", check=ID, default="''", comment="'' outside sessions"),
    Column("turn", "UInt32", "turn", check=Check(high=MAX_TURNS), default="0", comment="the turn's index, from 0"),
    Column("expected_cached_tokens", "UInt32", "expected_cached_tokens", check=TOKENS, default="0",
           comment="leading prompt tokens the server has seen (client's token ids, whole blocks)"),
    Column("cached_tokens", "Int64", "cached_tokens", check=Check(low=-1, high=MAX_TOKENS, why="not -1 or a token count"),
           default="-1", comment="usage.prompt_tokens_details.cached_tokens; -1: the server did not say"),
    Column("parent_session_id", "String", "parent_session_id", check=ID, default="''",
           comment="a sub-agent's: the session it was forked or spawned from"),
    Column("agent_node", _LC, "agent_node", check=ID, default="''", comment="the agent graph's node"),
    Column("agent_kind", _LC, "agent_kind", check=ID, default="''",
           comment="turn, tool, fork or spawn; '' for a session's plain turns"),
)

# Added to v1 in place (MIGRATIONS adds it to older stores, where it reads 0: not known).
MAX_TOKENS_COLUMN = Column("max_tokens", "UInt32", "max_tokens", check=TOKENS, default="0",
                           comment="output tokens the request asked for (fewer back: it ended early); 0 from older agents")

REQUESTS = Table("requests", (
    Column("run_id", "String", "run_id", check=ID),
    _AGENT,
    Column("request_id", "String", "request_id", check=ID),
    Column("step", "UInt32", "step"),
    Column("concurrency", "UInt32", "concurrency"),
    Column("repetition", "UInt32", "repetition"),
    Column("start_time", _TIME, "start_unix_ns", check=TIME, comment="wall clock just before the request was sent"),
    Column("ttft_ns", "Int64", "ttft_ns", comment="first content-bearing chunk; -1 when none came"),
    Column("e2e_ns", "Int64", "e2e_ns", comment="last byte of the stream"),
    Column("chunk_offset_ns", "Array(Int64)", "chunk_offset_ns", derived="the list as sent, checked against ttft_ns "
           "and e2e_ns", comment="arrival of each content-bearing chunk after the send"),
    Column("chunk_tokens", "Array(UInt32)", "chunk_tokens", derived="the list as sent, one count per chunk offset",
           check=TOKENS, comment="tokens carried by each of those chunks"),
    Column("prompt_tokens", "UInt32", "prompt_tokens", check=TOKENS),
    Column("output_tokens", "UInt32", "output_tokens", check=TOKENS),
    Column("tokens_counted", "Bool", "tokens_counted"),
    Column("finish_reason", _LC, "finish_reason", check=ID),
    Column("http_status", "UInt16", "http_status", check=Check(high=999, why="not an HTTP status code")),
    Column("error_class", _LC, "error_class", check=ID),
    Column("error_message", "String", "error_message", check=TEXT),
    Column("dispatch_delay_ns", "Int64", "dispatch_delay_ns", comment="send time - scheduled time",
           check=Check(low=-10**9, high=_DAY_NS, why="not within [-1 s, 1 day]")),
    *_ANSWER_COLUMNS,
    *_SESSION_COLUMNS,
    MAX_TOKENS_COLUMN,
    *_TRACE_REQUEST_COLUMNS,
), f"MergeTree ORDER BY (run_id, agent_id, step, request_id) {_DEDUP}", message="RequestRecord", batched=True)

DEVICE_SAMPLES = Table("device_samples", (
    Column("run_id", "String", "run_id", check=ID),
    _AGENT,
    Column("time", _TIME, "time_unix_ns", check=TIME),
    Column("source", _LC, "source", check=ID),
    Column("device", _LC, "device", check=ID),
    Column("metric", _LC, "values", derived="each key of the map: one row per entry", check=ID),
    Column("value", "Float64", "values", derived="the key's value", check=FINITE),
), f"MergeTree ORDER BY (agent_id, time, source, device, metric) {_DEDUP}", message="DeviceSample", batched=True)

SERVER_METRICS = Table("server_metrics", (
    Column("run_id", "String", "run_id", check=ID),
    _AGENT,
    Column("step", "UInt32", "step"),
    Column("name", _LC, "name", check=ID),
    Column("labels", "String", "labels", check=TEXT),
    Column("start_value", "Float64", "start_value", check=FINITE),
    Column("end_value", "Float64", "end_value", check=FINITE),
), f"MergeTree ORDER BY (run_id, agent_id, step, name, labels) {_DEDUP}", message="ServerMetric", batched=True)

# --- siliconbench-agent search: each probe's step (steps JOIN search_probes USING (run_id, agent_id, step))
# and the answer (searches, one row per search run) ---------------------------------------------------
_PER_SLO = "the list as sent, one entry per SLO in slo_keys' order"
_READINGS_FROM = Column("readings_from", "String", "readings_from", check=TEXT, default="''",
                        comment="collector: the readings were read from this store (collector/probe_readings.py); "
                                "else why the agent judged on its own records; empty from older agents")
SEARCH_PROBES = Table("search_probes", (
    Column("run_id", "String", derived="StepEvent.run_id of the step that carried the probe", check=ID),
    _AGENT,
    Column("step", "UInt32", derived="StepEvent.step of that step"),
    Column("search_id", "String", "search_id", check=ID),
    Column("probe", "UInt32", "index", comment="the probe's number in the search; the steps of an extended probe share it"),
    Column("value", "Float64", "value", check=NOT_NEGATIVE, comment="the concurrency or offered rate (requests/s) probed"),
    Column("phase", _LC, "phase", check=ID, comment="bracket, bisect or verify"),
    Column("verdict", _LC, "verdict", check=ID,
           comment="pass, fail, undecided, over-saturated; extend or inconclusive on a step more steps of the probe follow"),
    Column("reason", "String", "reason", check=TEXT),
    Column("requests", "UInt32", "requests", comment="requests judged, pooled over the probe's steps so far"),
    Column("slo_keys", f"Array({_LC})", "slo_keys", derived="the list as sent", check=ID),
    Column("slo_limits", "Array(Float64)", "slo_limits", derived=_PER_SLO, check=FINITE),
    Column("slo_points", "Array(Float64)", "slo_points", derived=_PER_SLO, comment="point estimates; nan: no sample"),
    Column("slo_bounds", "Array(Float64)", "slo_bounds", derived=_PER_SLO,
           comment="one-sided 95 % upper bounds; nan: too few samples for one"),
    _READINGS_FROM,
), f"MergeTree ORDER BY (run_id, agent_id, step) {_DEDUP}", message="SearchProbe", batched=True)

SEARCHES = Table("searches", (
    Column("run_id", "String", derived="RunEvent.run_id of the search run's end", check=ID),
    _AGENT,
    Column("search_id", "String", "search_id", check=ID),
    Column("control", _LC, "control", check=ID),
    Column("slo", "String", "slo", check=TEXT),
    Column("method", "String", "method", check=TEXT),
    Column("tolerance", "Float64", "tolerance", check=NOT_NEGATIVE),
    Column("found", "Bool", "found", comment="false: not even the first probe met the SLOs"),
    Column("boundary", "Float64", "boundary", check=NOT_NEGATIVE),
    Column("verified", "Bool", "verified"),
    Column("binding", _LC, "binding", check=ID),
    Column("slo_keys", f"Array({_LC})", "slo_keys", derived="the list as sent", check=ID),
    Column("slo_bounds", "Array(Float64)", "slo_bounds", derived=_PER_SLO, comment="at the boundary"),
    Column("headroom", "Array(Float64)", "headroom", derived=_PER_SLO, comment="1 - bound / limit at the boundary"),
    Column("output_tps", "Float64", "output_tps", check=NOT_NEGATIVE),
    Column("rps", "Float64", "rps", check=NOT_NEGATIVE),
    Column("probes", "UInt32", "probes"),
), f"MergeTree ORDER BY (run_id, agent_id) {_DEDUP}", message="SearchResult", batched=True)

_FLEET = "written by the collector's fleet control (collector/fleet.py)"
RUN_NODES = Table("run_nodes", (
    Column("run_id", "String", derived="the run the collector started"),
    Column("agent_id", _LC, derived=f"Hello.agent_id of a selected agent; {_FLEET}"),
    Column("node_name", _LC, derived="that agent's Hello.node_name"),
    Column("instance_type", _LC, derived="that agent's Hello.instance_type"),
    Column("scenario", _LC, derived="that agent's Hello.scenario"),
    Column("role", "Enum8('member' = 1, 'late' = 2)", derived="member: selected at the start; late: matched later"),
    Column("plan_json", "String", derived="StartRunRequest.plan_json"),
    Column("selector", "String", derived="StartRunRequest.selector, as sorted JSON"),
    Column("start_at", _TIME, derived="the run's shared start time"),
    Column("created", _TIME, derived="the collector's clock when the row was written"),
), "ReplacingMergeTree(created) ORDER BY (run_id, agent_id)")

RUN_PROGRESS = Table("run_progress", (
    Column("run_id", "String", "run_id", check=ID),
    Column("agent_id", _LC, derived="Hello.agent_id of the stream it came on"),
    Column("state", "Enum8('planned' = 1, 'running' = 2, 'finished' = 3, 'cancelled' = 4, 'failed' = 5)", "state",
           derived="the RunState's name; unspecified is ignored"),
    Column("step", "UInt32", "step"),
    Column("steps_total", "UInt32", "steps_total"),
    Column("requests_done", "UInt32", "requests_done"),
    Column("output_tokens_per_s", "Float64", "output_tokens_per_s", derived="0 when not finite"),
    Column("errors", "UInt32", "errors"),
    Column("detail", "String", "detail", derived="the first 2,000 characters"),
    Column("time", _TIME, "time_unix_ns", derived="the collector's clock when unset"),
), "ReplacingMergeTree(time) ORDER BY (run_id, agent_id)", message="RunProgress")

_PRICE_FILE = "the price CSV's column of that name (collector/prices.py)"
PRICES = Table("prices", (
    Column("instance_type", _LC, derived=_PRICE_FILE),
    Column("region", _LC, derived=_PRICE_FILE),
    Column("kind", _LC, derived=_PRICE_FILE),
    Column("usd_per_hour", "Float64", derived=_PRICE_FILE),
    Column("currency", _LC, derived=_PRICE_FILE + "; USD when empty"),
    Column("as_of", "String", derived=_PRICE_FILE, comment="date the price held, YYYY-MM[-DD]"),
    Column("accelerators", "String", derived=_PRICE_FILE),
    Column("accelerator_memory_gb", "Float64", derived=_PRICE_FILE + "; 0 when empty"),
    Column("confidence", _LC, derived=_PRICE_FILE),
    Column("source", "String", derived=_PRICE_FILE),
    Column("imported_at", _TIME, derived="the collector's clock at the import"),
), "ReplacingMergeTree(imported_at) ORDER BY (instance_type, region, kind, as_of)")

_DIGEST = "kept by request_digests_mv: the SELECT item of the same name in DIGEST_SELECT"


def _digest(name: str, type_: str = "UInt64") -> Column:
    return Column(name, type_, derived=_DIGEST)


# Sums of `requests` per step and batch, kept by a materialized view as rows arrive, so reports read one
# small row per batch for counts, means and throughput (percentiles are exact, from the rows:
# collector/views.py). A batch's row is made from all of that batch's rows of the step (a batch is one
# insert block, whole: collector/digests.py), so any two rows of one key are the same digest, whoever
# made them (the view, a repair, two collector replicas at once): ReplacingMergeTree keeps one, and
# readers read the table FINAL.
REQUEST_DIGESTS = Table("request_digests", (
    Column("run_id", "String", derived=_DIGEST), Column("agent_id", _LC, derived=_DIGEST),
    Column("step", "UInt32", derived=_DIGEST), Column(BATCH_ID, "String", derived=_DIGEST),
    _digest("concurrency", "UInt32"), _digest("repetition", "UInt32"),
    _digest("requests"), _digest("errors"), _digest("ok"), _digest("counted"), _digest("output_tokens"),
    _digest("prompt_tokens"), _digest("first_start_ns", "Int64"), _digest("last_end_ns", "Int64"),
    _digest("ttft_sum", "Float64"), _digest("e2e_sum", "Float64"), _digest("tpot_sum", "Float64"), _digest("tpot_n"),
    _digest("itl_sum", "Float64"), _digest("itl_token_sum", "Float64"), _digest("gaps"), _digest("gap_tokens"),
), f"ReplacingMergeTree ORDER BY (run_id, agent_id, step, {BATCH_ID})")

# Step results kept (collector/kept.py): once a step's rows are complete, its exact percentiles, steady-state
# figures, dispatch figures, goodput under the run's own SLO and distribution states are computed once and
# stored, one row per step (kept_answers: per step and served model), so reports read one small row per step
# instead of every gap. `step_rows` is the number of request rows they were computed from: a row is valid
# while it equals the step's digest, and it is the version ReplacingMergeTree keeps, so whichever keeper
# (a repair, a late batch, a second replica) computed from the most rows wins, and two computations from
# the same rows are the same row. Readers read them FINAL.
_KEPT = "computed from the step's rows by collector/kept.py (KEPT_STEPS_SELECT)"
_STEP_ROWS = Column("step_rows", "UInt64", derived="count() of the step's request rows the row was computed from",
                    comment="valid while equal to the step's digest; the version kept")
_KEPT_AT = Column("kept_at", _TIME, derived="the collector's clock when it was computed")


def _kept(name: str, type_: str) -> Column:
    return Column(name, type_, derived=_KEPT)


_SPREAD = f"AggregateFunction(quantilesIf({sql_levels(SPREAD_LEVELS)}), Float64, UInt8)"
_SPREAD_ARRAY = f"AggregateFunction(quantilesArrayIf({sql_levels(SPREAD_LEVELS)}), Array(Float64), UInt8)"
KEPT_STEPS = Table("kept_steps", (
    Column("run_id", "String", derived=_KEPT), Column("agent_id", _LC, derived=_KEPT),
    Column("step", "UInt32", derived=_KEPT), _STEP_ROWS, _KEPT_AT,
    *(_kept(name, "Array(Float64)") for name in ("ttft_ms", "itl_ms", "itl_token_ms", "tpot_ms", "e2e_ms")),
    *(_kept(name, "Nullable(Float64)") for name in ("full_concurrency_share", "steady_s", "steady_output_tps")),
    _kept("dispatch_mean_ms", "Float64"), _kept("dispatch_p99_ms", "Float64"), _kept("sent_rps", "Nullable(Float64)"),
    _kept("ended_early", "UInt64"), _kept("tokens_asked", "UInt32"),
    Column("session_requests", "UInt64", derived="the step's requests that belong to a session",
           comment="0: no session figures to read (collector/sessions.py)"),
    *(Column(f"slo_{key}", "Float64", derived="the run's own SLO (its plan's slo; inf: none), as goodput counted it")
      for key in GOODPUT_KEYS),
    _kept("good_requests", "UInt64"), _kept("good_tokens_out", "UInt64"), _kept("good_tokens_total", "UInt64"),
    _kept("ttft_spread", _SPREAD), _kept("ttft_spread_min", "Nullable(Float64)"), _kept("ttft_spread_max", "Nullable(Float64)"),
    _kept("itl_token_spread", _SPREAD_ARRAY), _kept("itl_token_spread_min", "Nullable(Float64)"),
    _kept("itl_token_spread_max", "Nullable(Float64)"),
    # the digests' figures (step_sql.rollups_over) over the same rows, for a reader that found every step kept
    *(Column(name, type_, derived="step_sql.rollups_over the digests of the same rows") for name, type_ in (
        ("concurrency", "UInt32"), ("repetition", "UInt32"), ("requests", "UInt64"), ("errors", "UInt64"),
        ("ok_requests", "UInt64"), ("counted_requests", "UInt64"), ("tokens_out", "UInt64"), ("tokens_in", "UInt64"),
        ("wall_s", "Float64"), ("ttft_mean_ms", "Nullable(Float64)"), ("itl_mean_ms", "Nullable(Float64)"),
        ("itl_token_mean_ms", "Nullable(Float64)"), ("tokens_per_chunk", "Nullable(Float64)"),
        ("tpot_mean_ms", "Nullable(Float64)"), ("e2e_mean_ms", "Nullable(Float64)"), ("output_tps", "Float64"),
        ("total_tps", "Float64"), ("rps", "Float64"), ("mean_in_flight", "Nullable(Float64)"))),
), "ReplacingMergeTree(step_rows) ORDER BY (run_id, agent_id, step)")

KEPT_ANSWERS = Table("kept_answers", (
    Column("run_id", "String", derived=_KEPT), Column("agent_id", _LC, derived=_KEPT),
    Column("step", "UInt32", derived=_KEPT), Column("model", _LC, derived=_KEPT), _STEP_ROWS, _KEPT_AT,
    *(_kept(name, "UInt64") for name in ("requests", "ok_requests", "answered")),
    _kept("ttft_ms", "Array(Float64)"), _kept("ttfa_ms", "Array(Float64)"), _kept("ttfa_mean_ms", "Float64"),
    *(_kept(name, "UInt64") for name in ("reasoning_requests", "reasoning_tokens", "reasoning_chunks", "answer_chunks",
                                         "usage_tokens")),
    *(_kept(name, "Array(Float64)") for name in ("reasoning_ms", "answer_itl_ms", "reasoning_itl_ms")),
    *(_kept(name, "UInt64") for name in ("silent_reasoning", "tool_calls", "tool_calls_invalid")),
    _kept("tool_call_ms", "Array(Float64)"),
    _kept("first_start_ns", "Int64"), _kept("first_request_id", "String"), _kept("first_error_class", "String"),
    _kept("first_ttft_ms", "Float64"),
), "ReplacingMergeTree(step_rows) ORDER BY (run_id, agent_id, step, model)")

# Device and node figures per step, kept once the run ended (collector/kept.py), from all of the node's samples:
# `run_samples` (the node's samples in the run when they were computed) is the version and the validity, as
# step_rows is for the request figures (a late sample makes the node's rows read as computed until kept again).
_KEPT_SAMPLES = Column("run_samples", "UInt64", derived="count() of the node's device samples in the run",
                       comment="valid while equal to that count now; the version kept")
_DEVICE = "computed from the samples by collector/device_views.py (device_rollups_select)"
_NODE = "computed from the samples by collector/device_views.py (node_rollups_select)"
_STEP_OF_SAMPLES = (Column("run_id", "String", derived=_DEVICE), Column("agent_id", _LC, derived=_DEVICE),
                    Column("step", "UInt32", derived=_DEVICE), _KEPT_SAMPLES, _KEPT_AT,
                    Column("concurrency", "UInt32", derived=_DEVICE), Column("repetition", "UInt32", derived=_DEVICE),
                    Column("mode", _LC, derived=_DEVICE), Column("rate_rps", "Float64", derived=_DEVICE),
                    Column("step_s", "Float64", derived=_DEVICE))
KEPT_DEVICES = Table("kept_devices", (
    *_STEP_OF_SAMPLES,
    *(Column(name, type_, derived=_DEVICE) for name, type_ in (
        ("source", _LC), ("device", _LC), ("util_samples", "UInt64"), ("util_mean_pct", "Float64"),
        ("util_pct", "Array(Float64)"), ("mem_peak_bytes", "Float64"), ("power_samples", "UInt64"),
        ("power_mean_w", "Float64"), ("energy_samples", "UInt64"), ("counter_delta_j", "Float64"),
        ("counter_span_s", "Float64"), ("boundary_energy_j", "Nullable(Float64)"), ("energy_method", "String"),
        ("energy_j", "Nullable(Float64)"))),
), "ReplacingMergeTree(run_samples) ORDER BY (run_id, agent_id, step, source, device)")
KEPT_NODES = Table("kept_nodes", (
    *_STEP_OF_SAMPLES,
    *(Column(name, type_, derived=_NODE) for name, type_ in (
        ("util_mean_pct", "Float64"), ("util_pct", "Array(Float64)"), ("host_cpu_mean_pct", "Float64"),
        ("devices", "Nullable(UInt64)"), ("sources", "Array(String)"), ("mem_peak_bytes", "Nullable(Float64)"),
        ("power_mean_w", "Nullable(Float64)"), ("energy_j", "Nullable(Float64)"),
        ("energy_method", "Nullable(String)"))),
), "ReplacingMergeTree(run_samples) ORDER BY (run_id, agent_id, step)")
KEPT_TIMELINES = Table("kept_timelines", (
    Column("run_id", "String", derived=_NODE), Column("agent_id", _LC, derived=_NODE), _KEPT_SAMPLES, _KEPT_AT,
    Column("points", "Array(Tuple(UInt32, Float64, Float64))",
           derived="collector/device_views.py timeline_select, in time order",
           comment="(unix second, mean accelerator utilisation %, node power W) per second with a reading"),
), "ReplacingMergeTree(run_samples) ORDER BY (run_id, agent_id)")

# Each served model's first request and the others' TTFT p50, pooled exactly over the node's run: kept once the
# run ended (collector/kept.py), valid while the node's request rows in the run are as many as then (`run_rows`).
_MODEL = "computed from the rows by collector/answer_views.py (model_first_select)"
KEPT_MODELS = Table("kept_models", (
    Column("run_id", "String", derived=_MODEL), Column("agent_id", _LC, derived=_MODEL),
    Column("model", _LC, derived=_MODEL),
    Column("run_rows", "UInt64", derived="the node's request rows in the run (its digests)",
           comment="valid while equal to that count now; the version kept"), _KEPT_AT,
    *(Column(name, type_, derived=_MODEL) for name, type_ in (
        ("requests", "UInt64"), ("first_request_id", "String"), ("first_error_class", "String"),
        ("first_ttft_ms", "Float64"), ("warm_requests", "Int64"), ("warm_ttft_p50_ms", "Float64"))),
), "ReplacingMergeTree(run_rows) ORDER BY (run_id, agent_id, model)")

SCHEMA_VERSION_TABLE = Table("schema_version", (
    Column("version", "UInt32", derived="SCHEMA_VERSION of the collector that created or upgraded the store"),
    Column("applied_at", _TIME, derived="the collector's clock then"),
), "ReplacingMergeTree(applied_at) ORDER BY version")

TABLES: dict[str, Table] = {t.name: t for t in (
    NODES, RUNS, STEPS, REQUESTS, DEVICE_SAMPLES, SERVER_METRICS, RUN_NODES, RUN_PROGRESS, PRICES, REQUEST_DIGESTS,
    KEPT_STEPS, KEPT_ANSWERS, KEPT_DEVICES, KEPT_NODES, KEPT_TIMELINES,
    KEPT_MODELS, SCHEMA_VERSION_TABLE, SEARCH_PROBES, SEARCHES)}
# The tables agents write: each row carries its batch's id, indexed so that "which of these batches
# does the table hold?" reads a few granules (added to v1 in place; MIGRATIONS adds it to older stores).
BATCHED = tuple(name for name, t in TABLES.items() if t.batched)


def digest_select(source: str) -> str:
    """The digest rows (one per step and batch) of the request rows in `source` (a table or a
    parenthesised subquery): what the materialized view stores per insert block, what backfills a store
    created before it, and what rebuilds a step's digest from its rows (collector/digests.py).
    Definitions are DESIGN §3, written once in collector/formulas.py (see collector/views.py for the
    read side)."""
    return f"""
    WITH {REQUEST_FIGURES}
    SELECT run_id, agent_id, step, batch_id, any(concurrency) AS concurrency, any(repetition) AS repetition,
        count() AS requests, countIf(error_class != '') AS errors, countIf(error_class = '') AS ok,
        countIf(error_class = '' AND tokens_counted) AS counted,
        sumIf(output_tokens, error_class = '') AS output_tokens, sumIf(prompt_tokens, error_class = '') AS prompt_tokens,
        min(req_start_ns) AS first_start_ns,
        max(req_end_ns) AS last_end_ns,
        sumIf(req_ttft_ms, error_class = '') AS ttft_sum,
        sumIf(req_e2e_ms, error_class = '') AS e2e_sum,
        sumIf(req_tpot_ms, error_class = '' AND req_has_tpot) AS tpot_sum,
        countIf(error_class = '' AND req_has_tpot) AS tpot_n,
        sumIf(arraySum(req_gap_ms), error_class = '') AS itl_sum,
        sumIf(arraySum(req_gap_token_ms), error_class = '') AS itl_token_sum,
        sumIf(length(req_gap_ms), error_class = '') AS gaps,
        sumIf(arraySum(req_gap_tokens), error_class = '') AS gap_tokens
    FROM {source}
    GROUP BY run_id, agent_id, step, batch_id
    SETTINGS prefer_column_name_to_alias = 1"""


DIGEST_SELECT = digest_select("{db}.requests")

# Created at every start, in this order (CREATE ... IF NOT EXISTS: an existing store keeps its tables).
DDL: dict[str, str] = {
    **{name: t.ddl() for name, t in TABLES.items() if name != SCHEMA_VERSION_TABLE.name},
    "request_digests_mv": "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.request_digests_mv TO {db}.request_digests AS "
                          + DIGEST_SELECT,
    SCHEMA_VERSION_TABLE.name: SCHEMA_VERSION_TABLE.ddl(),
}

# The kept-results tables (collector/kept.py): derived, so one whose columns are not the declared ones is dropped at
# start (Store.ensure_schema) and kept again from the rows.
KEPT = (KEPT_STEPS.name, KEPT_ANSWERS.name, KEPT_DEVICES.name, KEPT_NODES.name, KEPT_TIMELINES.name, KEPT_MODELS.name)

# Run at every start, after DDL: bring a store created before a column was added up to date.
MIGRATIONS: list[str] = [
    stmt for table in BATCHED for stmt in (
        f"ALTER TABLE {{db}}.{table} ADD COLUMN IF NOT EXISTS {BATCH_ID_COLUMN.ddl()}",
        f"ALTER TABLE {{db}}.{table} ADD INDEX IF NOT EXISTS {_BATCH_ID_INDEX}",
    )
] + [f"ALTER TABLE {{db}}.runs ADD COLUMN IF NOT EXISTS {RUNS.column(name).ddl()}"
     for name in ("outcome", "outcome_detail", "requests_sent")
] + [f"ALTER TABLE {{db}}.requests ADD COLUMN IF NOT EXISTS {column.ddl()}" for column in _ANSWER_COLUMNS
] + [f"ALTER TABLE {{db}}.requests ADD COLUMN IF NOT EXISTS {column.ddl()}" for column in _SESSION_COLUMNS
] + [f"ALTER TABLE {{db}}.steps ADD COLUMN IF NOT EXISTS {_BLOCK_SIZE.ddl()}"
] + [f"ALTER TABLE {{db}}.steps ADD COLUMN IF NOT EXISTS {column.ddl()}" for column in _VERDICT_COLUMNS
] + [f"ALTER TABLE {{db}}.search_probes ADD COLUMN IF NOT EXISTS {_READINGS_FROM.ddl()}"
] + [f"ALTER TABLE {{db}}.requests ADD COLUMN IF NOT EXISTS {MAX_TOKENS_COLUMN.ddl()}"
] + [f"ALTER TABLE {{db}}.{table} ADD COLUMN IF NOT EXISTS {column.ddl()}" for table, columns in (
     ("requests", _TRACE_REQUEST_COLUMNS), ("steps", _TRACE_STEP_COLUMNS), ("runs", _TRACE_RUN_COLUMNS))
     for column in columns]

# Run once when the named table is created in a store that already holds requests.
BACKFILL: dict[str, str] = {
    "request_digests": "INSERT INTO {db}.request_digests " + DIGEST_SELECT,
}

# Derived tables whose layout changes are not made in place: a store's table whose engine is not the
# declared one is dropped at start, with the views that fill it, then made again and backfilled from
# the rows (request_digests: per step until its rows became per step and batch).
REBUILT: dict[str, tuple[str, ...]] = {
    "request_digests": ("request_digests_mv",),
}
