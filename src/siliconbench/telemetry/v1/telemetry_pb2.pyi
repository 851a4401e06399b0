from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_START: _ClassVar[Phase]
    PHASE_END: _ClassVar[Phase]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_PLANNED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_FINISHED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID: _ClassVar[ErrorCode]
    ERROR_CODE_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_PROTOCOL: _ClassVar[ErrorCode]
PHASE_UNSPECIFIED: Phase
PHASE_START: Phase
PHASE_END: Phase
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_PLANNED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_FINISHED: RunState
RUN_STATE_CANCELLED: RunState
RUN_STATE_FAILED: RunState
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_INVALID: ErrorCode
ERROR_CODE_UNAVAILABLE: ErrorCode
ERROR_CODE_PROTOCOL: ErrorCode

class AgentMessage(_message.Message):
    __slots__ = ("hello", "batch", "progress", "offer", "command_ack")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ACK_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    batch: Batch
    progress: RunProgress
    offer: Offer
    command_ack: CommandAck
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., batch: _Optional[_Union[Batch, _Mapping]] = ..., progress: _Optional[_Union[RunProgress, _Mapping]] = ..., offer: _Optional[_Union[Offer, _Mapping]] = ..., command_ack: _Optional[_Union[CommandAck, _Mapping]] = ...) -> None: ...

class CollectorMessage(_message.Message):
    __slots__ = ("ack", "error", "command", "grant")
    ACK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    ack: Ack
    error: Error
    command: Command
    grant: Grant
    def __init__(self, ack: _Optional[_Union[Ack, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., command: _Optional[_Union[Command, _Mapping]] = ..., grant: _Optional[_Union[Grant, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("agent_id", "node_name", "instance_type", "accelerator_kind", "accelerator_count", "accelerator_model", "agent_version", "driver_version", "scenario")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_KIND_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRIVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    node_name: str
    instance_type: str
    accelerator_kind: str
    accelerator_count: int
    accelerator_model: str
    agent_version: str
    driver_version: str
    scenario: str
    def __init__(self, agent_id: _Optional[str] = ..., node_name: _Optional[str] = ..., instance_type: _Optional[str] = ..., accelerator_kind: _Optional[str] = ..., accelerator_count: _Optional[int] = ..., accelerator_model: _Optional[str] = ..., agent_version: _Optional[str] = ..., driver_version: _Optional[str] = ..., scenario: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("seq", "bytes")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    bytes: int
    def __init__(self, seq: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class Grant(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("seq", "batch_id", "runs", "steps", "requests", "samples", "server_metrics")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SERVER_METRICS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    batch_id: str
    runs: _containers.RepeatedCompositeFieldContainer[RunEvent]
    steps: _containers.RepeatedCompositeFieldContainer[StepEvent]
    requests: _containers.RepeatedCompositeFieldContainer[RequestRecord]
    samples: _containers.RepeatedCompositeFieldContainer[DeviceSample]
    server_metrics: _containers.RepeatedCompositeFieldContainer[ServerMetric]
    def __init__(self, seq: _Optional[int] = ..., batch_id: _Optional[str] = ..., runs: _Optional[_Iterable[_Union[RunEvent, _Mapping]]] = ..., steps: _Optional[_Iterable[_Union[StepEvent, _Mapping]]] = ..., requests: _Optional[_Iterable[_Union[RequestRecord, _Mapping]]] = ..., samples: _Optional[_Iterable[_Union[DeviceSample, _Mapping]]] = ..., server_metrics: _Optional[_Iterable[_Union[ServerMetric, _Mapping]]] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("run_id", "phase", "time_unix_ns", "target_url", "model", "simulated", "target_version", "scenario", "config_json", "outcome", "outcome_detail", "requests_sent", "search", "trace_file", "trace_bad_lines")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    TARGET_URL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_DETAIL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_SENT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    TRACE_FILE_FIELD_NUMBER: _ClassVar[int]
    TRACE_BAD_LINES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    phase: Phase
    time_unix_ns: int
    target_url: str
    model: str
    simulated: bool
    target_version: str
    scenario: str
    config_json: str
    outcome: str
    outcome_detail: str
    requests_sent: int
    search: SearchResult
    trace_file: str
    trace_bad_lines: int
    def __init__(self, run_id: _Optional[str] = ..., phase: _Optional[_Union[Phase, str]] = ..., time_unix_ns: _Optional[int] = ..., target_url: _Optional[str] = ..., model: _Optional[str] = ..., simulated: _Optional[bool] = ..., target_version: _Optional[str] = ..., scenario: _Optional[str] = ..., config_json: _Optional[str] = ..., outcome: _Optional[str] = ..., outcome_detail: _Optional[str] = ..., requests_sent: _Optional[int] = ..., search: _Optional[_Union[SearchResult, _Mapping]] = ..., trace_file: _Optional[str] = ..., trace_bad_lines: _Optional[int] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("run_id", "step", "concurrency", "repetition", "start_unix_ns", "end_unix_ns", "requests", "mode", "rate_rps", "agent_cpu_pct", "loop_lag_p99_ms", "client_saturated", "search_probe", "block_size", "client_delay_p99_ms", "client_delay_share", "agent_processes_cpu_pct", "node_cpu_pct", "server_cpu_pct", "verdict", "trace_format", "trace_block_size", "trace_time_scale", "trace_rate_scale", "trace_window")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REPETITION_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RATE_RPS_FIELD_NUMBER: _ClassVar[int]
    AGENT_CPU_PCT_FIELD_NUMBER: _ClassVar[int]
    LOOP_LAG_P99_MS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SATURATED_FIELD_NUMBER: _ClassVar[int]
    SEARCH_PROBE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_DELAY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_DELAY_SHARE_FIELD_NUMBER: _ClassVar[int]
    AGENT_PROCESSES_CPU_PCT_FIELD_NUMBER: _ClassVar[int]
    NODE_CPU_PCT_FIELD_NUMBER: _ClassVar[int]
    SERVER_CPU_PCT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    TRACE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TRACE_BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRACE_TIME_SCALE_FIELD_NUMBER: _ClassVar[int]
    TRACE_RATE_SCALE_FIELD_NUMBER: _ClassVar[int]
    TRACE_WINDOW_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: int
    concurrency: int
    repetition: int
    start_unix_ns: int
    end_unix_ns: int
    requests: int
    mode: str
    rate_rps: float
    agent_cpu_pct: float
    loop_lag_p99_ms: float
    client_saturated: bool
    search_probe: SearchProbe
    block_size: int
    client_delay_p99_ms: float
    client_delay_share: float
    agent_processes_cpu_pct: float
    node_cpu_pct: float
    server_cpu_pct: float
    verdict: str
    trace_format: str
    trace_block_size: int
    trace_time_scale: float
    trace_rate_scale: float
    trace_window: str
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[int] = ..., concurrency: _Optional[int] = ..., repetition: _Optional[int] = ..., start_unix_ns: _Optional[int] = ..., end_unix_ns: _Optional[int] = ..., requests: _Optional[int] = ..., mode: _Optional[str] = ..., rate_rps: _Optional[float] = ..., agent_cpu_pct: _Optional[float] = ..., loop_lag_p99_ms: _Optional[float] = ..., client_saturated: _Optional[bool] = ..., search_probe: _Optional[_Union[SearchProbe, _Mapping]] = ..., block_size: _Optional[int] = ..., client_delay_p99_ms: _Optional[float] = ..., client_delay_share: _Optional[float] = ..., agent_processes_cpu_pct: _Optional[float] = ..., node_cpu_pct: _Optional[float] = ..., server_cpu_pct: _Optional[float] = ..., verdict: _Optional[str] = ..., trace_format: _Optional[str] = ..., trace_block_size: _Optional[int] = ..., trace_time_scale: _Optional[float] = ..., trace_rate_scale: _Optional[float] = ..., trace_window: _Optional[str] = ...) -> None: ...

class RequestRecord(_message.Message):
    __slots__ = ("run_id", "request_id", "step", "concurrency", "repetition", "start_unix_ns", "ttft_ns", "e2e_ns", "chunk_offset_ns", "chunk_tokens", "prompt_tokens", "output_tokens", "tokens_counted", "finish_reason", "http_status", "error_class", "error_message", "dispatch_delay_ns", "model", "first_reasoning_ns", "first_answer_ns", "first_tool_call_ns", "chunk_kinds", "tool_calls", "tool_calls_invalid", "session_id", "turn", "expected_cached_tokens", "cached_tokens", "parent_session_id", "agent_node", "agent_kind", "max_tokens", "trace_line", "trace_offset_ns")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REPETITION_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    TTFT_NS_FIELD_NUMBER: _ClassVar[int]
    E2E_NS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_OFFSET_NS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_COUNTED_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_DELAY_NS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FIRST_REASONING_NS_FIELD_NUMBER: _ClassVar[int]
    FIRST_ANSWER_NS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOOL_CALL_NS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_KINDS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_INVALID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_NODE_FIELD_NUMBER: _ClassVar[int]
    AGENT_KIND_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRACE_LINE_FIELD_NUMBER: _ClassVar[int]
    TRACE_OFFSET_NS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    request_id: str
    step: int
    concurrency: int
    repetition: int
    start_unix_ns: int
    ttft_ns: int
    e2e_ns: int
    chunk_offset_ns: _containers.RepeatedScalarFieldContainer[int]
    chunk_tokens: _containers.RepeatedScalarFieldContainer[int]
    prompt_tokens: int
    output_tokens: int
    tokens_counted: bool
    finish_reason: str
    http_status: int
    error_class: str
    error_message: str
    dispatch_delay_ns: int
    model: str
    first_reasoning_ns: int
    first_answer_ns: int
    first_tool_call_ns: int
    chunk_kinds: _containers.RepeatedScalarFieldContainer[int]
    tool_calls: int
    tool_calls_invalid: int
    session_id: str
    turn: int
    expected_cached_tokens: int
    cached_tokens: int
    parent_session_id: str
    agent_node: str
    agent_kind: str
    max_tokens: int
    trace_line: int
    trace_offset_ns: int
    def __init__(self, run_id: _Optional[str] = ..., request_id: _Optional[str] = ..., step: _Optional[int] = ..., concurrency: _Optional[int] = ..., repetition: _Optional[int] = ..., start_unix_ns: _Optional[int] = ..., ttft_ns: _Optional[int] = ..., e2e_ns: _Optional[int] = ..., chunk_offset_ns: _Optional[_Iterable[int]] = ..., chunk_tokens: _Optional[_Iterable[int]] = ..., prompt_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., tokens_counted: _Optional[bool] = ..., finish_reason: _Optional[str] = ..., http_status: _Optional[int] = ..., error_class: _Optional[str] = ..., error_message: _Optional[str] = ..., dispatch_delay_ns: _Optional[int] = ..., model: _Optional[str] = ..., first_reasoning_ns: _Optional[int] = ..., first_answer_ns: _Optional[int] = ..., first_tool_call_ns: _Optional[int] = ..., chunk_kinds: _Optional[_Iterable[int]] = ..., tool_calls: _Optional[int] = ..., tool_calls_invalid: _Optional[int] = ..., session_id: _Optional[str] = ..., turn: _Optional[int] = ..., expected_cached_tokens: _Optional[int] = ..., cached_tokens: _Optional[int] = ..., parent_session_id: _Optional[str] = ..., agent_node: _Optional[str] = ..., agent_kind: _Optional[str] = ..., max_tokens: _Optional[int] = ..., trace_line: _Optional[int] = ..., trace_offset_ns: _Optional[int] = ...) -> None: ...

class DeviceSample(_message.Message):
    __slots__ = ("run_id", "time_unix_ns", "source", "device", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    time_unix_ns: int
    source: str
    device: str
    values: _containers.ScalarMap[str, float]
    def __init__(self, run_id: _Optional[str] = ..., time_unix_ns: _Optional[int] = ..., source: _Optional[str] = ..., device: _Optional[str] = ..., values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ServerMetric(_message.Message):
    __slots__ = ("run_id", "step", "name", "labels", "start_value", "end_value")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    START_VALUE_FIELD_NUMBER: _ClassVar[int]
    END_VALUE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: int
    name: str
    labels: str
    start_value: float
    end_value: float
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[int] = ..., name: _Optional[str] = ..., labels: _Optional[str] = ..., start_value: _Optional[float] = ..., end_value: _Optional[float] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("start", "cancel", "renew", "id")
    START_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    RENEW_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    start: StartCommand
    cancel: CancelCommand
    renew: LeaseRenewal
    id: int
    def __init__(self, start: _Optional[_Union[StartCommand, _Mapping]] = ..., cancel: _Optional[_Union[CancelCommand, _Mapping]] = ..., renew: _Optional[_Union[LeaseRenewal, _Mapping]] = ..., id: _Optional[int] = ...) -> None: ...

class StartCommand(_message.Message):
    __slots__ = ("run_id", "plan_json", "start_at_unix_ns", "lease_s")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    START_AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    plan_json: str
    start_at_unix_ns: int
    lease_s: float
    def __init__(self, run_id: _Optional[str] = ..., plan_json: _Optional[str] = ..., start_at_unix_ns: _Optional[int] = ..., lease_s: _Optional[float] = ...) -> None: ...

class LeaseRenewal(_message.Message):
    __slots__ = ("run_id", "lease_s")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    lease_s: float
    def __init__(self, run_id: _Optional[str] = ..., lease_s: _Optional[float] = ...) -> None: ...

class CommandAck(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class CancelCommand(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunProgress(_message.Message):
    __slots__ = ("run_id", "state", "step", "steps_total", "requests_done", "output_tokens_per_s", "errors", "detail", "time_unix_ns")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_DONE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_PER_S_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: RunState
    step: int
    steps_total: int
    requests_done: int
    output_tokens_per_s: float
    errors: int
    detail: str
    time_unix_ns: int
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., step: _Optional[int] = ..., steps_total: _Optional[int] = ..., requests_done: _Optional[int] = ..., output_tokens_per_s: _Optional[float] = ..., errors: _Optional[int] = ..., detail: _Optional[str] = ..., time_unix_ns: _Optional[int] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("plan_json", "selector", "start_delay_s", "run_id", "start_at_unix_ns", "min_agents")
    class SelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    START_DELAY_S_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    START_AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    MIN_AGENTS_FIELD_NUMBER: _ClassVar[int]
    plan_json: str
    selector: _containers.ScalarMap[str, str]
    start_delay_s: float
    run_id: str
    start_at_unix_ns: int
    min_agents: int
    def __init__(self, plan_json: _Optional[str] = ..., selector: _Optional[_Mapping[str, str]] = ..., start_delay_s: _Optional[float] = ..., run_id: _Optional[str] = ..., start_at_unix_ns: _Optional[int] = ..., min_agents: _Optional[int] = ...) -> None: ...

class StartRunReply(_message.Message):
    __slots__ = ("run_id", "agents", "start_at_unix_ns")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    START_AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    agents: _containers.RepeatedScalarFieldContainer[str]
    start_at_unix_ns: int
    def __init__(self, run_id: _Optional[str] = ..., agents: _Optional[_Iterable[str]] = ..., start_at_unix_ns: _Optional[int] = ...) -> None: ...

class RunStatusRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("agent_id", "node_name", "instance_type", "scenario", "progress", "connected", "unacknowledged")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    UNACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    node_name: str
    instance_type: str
    scenario: str
    progress: RunProgress
    connected: bool
    unacknowledged: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., node_name: _Optional[str] = ..., instance_type: _Optional[str] = ..., scenario: _Optional[str] = ..., progress: _Optional[_Union[RunProgress, _Mapping]] = ..., connected: _Optional[bool] = ..., unacknowledged: _Optional[_Iterable[str]] = ...) -> None: ...

class RunStatusReply(_message.Message):
    __slots__ = ("run_id", "state", "nodes")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: RunState
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStatus]
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., nodes: _Optional[_Iterable[_Union[NodeStatus, _Mapping]]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class CancelRunReply(_message.Message):
    __slots__ = ("run_id", "agents")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    agents: int
    def __init__(self, run_id: _Optional[str] = ..., agents: _Optional[int] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("selector",)
    class SelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    selector: _containers.ScalarMap[str, str]
    def __init__(self, selector: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListAgentsReply(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Hello]
    def __init__(self, agents: _Optional[_Iterable[_Union[Hello, _Mapping]]] = ...) -> None: ...

class ProbeStep(_message.Message):
    __slots__ = ("step", "steady_concurrency", "requests")
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEADY_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    step: int
    steady_concurrency: int
    requests: int
    def __init__(self, step: _Optional[int] = ..., steady_concurrency: _Optional[int] = ..., requests: _Optional[int] = ...) -> None: ...

class ProbeReadingsRequest(_message.Message):
    __slots__ = ("run_id", "agent_id", "steps", "slo", "wait_s")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    SLO_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    agent_id: str
    steps: _containers.RepeatedCompositeFieldContainer[ProbeStep]
    slo: str
    wait_s: float
    def __init__(self, run_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[ProbeStep, _Mapping]]] = ..., slo: _Optional[str] = ..., wait_s: _Optional[float] = ...) -> None: ...

class ProbeReading(_message.Message):
    __slots__ = ("key", "point", "bound", "lower", "samples")
    KEY_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    key: str
    point: float
    bound: float
    lower: float
    samples: int
    def __init__(self, key: _Optional[str] = ..., point: _Optional[float] = ..., bound: _Optional[float] = ..., lower: _Optional[float] = ..., samples: _Optional[int] = ...) -> None: ...

class ProbeReadingsReply(_message.Message):
    __slots__ = ("readings", "requests", "stored_after_s")
    READINGS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    STORED_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    readings: _containers.RepeatedCompositeFieldContainer[ProbeReading]
    requests: int
    stored_after_s: float
    def __init__(self, readings: _Optional[_Iterable[_Union[ProbeReading, _Mapping]]] = ..., requests: _Optional[int] = ..., stored_after_s: _Optional[float] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("seq", "code", "message")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    code: ErrorCode
    message: str
    def __init__(self, seq: _Optional[int] = ..., code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ...) -> None: ...

class SearchProbe(_message.Message):
    __slots__ = ("search_id", "index", "value", "phase", "verdict", "reason", "requests", "slo_keys", "slo_limits", "slo_points", "slo_bounds", "readings_from")
    SEARCH_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SLO_KEYS_FIELD_NUMBER: _ClassVar[int]
    SLO_LIMITS_FIELD_NUMBER: _ClassVar[int]
    SLO_POINTS_FIELD_NUMBER: _ClassVar[int]
    SLO_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    READINGS_FROM_FIELD_NUMBER: _ClassVar[int]
    search_id: str
    index: int
    value: float
    phase: str
    verdict: str
    reason: str
    requests: int
    slo_keys: _containers.RepeatedScalarFieldContainer[str]
    slo_limits: _containers.RepeatedScalarFieldContainer[float]
    slo_points: _containers.RepeatedScalarFieldContainer[float]
    slo_bounds: _containers.RepeatedScalarFieldContainer[float]
    readings_from: str
    def __init__(self, search_id: _Optional[str] = ..., index: _Optional[int] = ..., value: _Optional[float] = ..., phase: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., requests: _Optional[int] = ..., slo_keys: _Optional[_Iterable[str]] = ..., slo_limits: _Optional[_Iterable[float]] = ..., slo_points: _Optional[_Iterable[float]] = ..., slo_bounds: _Optional[_Iterable[float]] = ..., readings_from: _Optional[str] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("search_id", "control", "slo", "method", "tolerance", "found", "boundary", "verified", "binding", "slo_keys", "slo_bounds", "headroom", "output_tps", "rps", "probes")
    SEARCH_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    SLO_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    BINDING_FIELD_NUMBER: _ClassVar[int]
    SLO_KEYS_FIELD_NUMBER: _ClassVar[int]
    SLO_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TPS_FIELD_NUMBER: _ClassVar[int]
    RPS_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    search_id: str
    control: str
    slo: str
    method: str
    tolerance: float
    found: bool
    boundary: float
    verified: bool
    binding: str
    slo_keys: _containers.RepeatedScalarFieldContainer[str]
    slo_bounds: _containers.RepeatedScalarFieldContainer[float]
    headroom: _containers.RepeatedScalarFieldContainer[float]
    output_tps: float
    rps: float
    probes: int
    def __init__(self, search_id: _Optional[str] = ..., control: _Optional[str] = ..., slo: _Optional[str] = ..., method: _Optional[str] = ..., tolerance: _Optional[float] = ..., found: _Optional[bool] = ..., boundary: _Optional[float] = ..., verified: _Optional[bool] = ..., binding: _Optional[str] = ..., slo_keys: _Optional[_Iterable[str]] = ..., slo_bounds: _Optional[_Iterable[float]] = ..., headroom: _Optional[_Iterable[float]] = ..., output_tps: _Optional[float] = ..., rps: _Optional[float] = ..., probes: _Optional[int] = ...) -> None: ...
