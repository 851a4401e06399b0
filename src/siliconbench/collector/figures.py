"""The figures a report reads, as typed records: one per step (`StepRow`, view step_results), per sweep
point (`PointRow`, view sweep_results: the median of the repetitions with their min and max), per node
and point (`NodeRow`, node_sweep) and per device and point (`DeviceRow`). collector/rollups.py builds
them once from the views' rows; reports read fields by name, never a column by a string or a percentile
by its place in an array.

A record's fields are the view's columns, in the view's order: a column the view gains or loses fails
the build (`record`) instead of a report. `as_row()` gives the view's row back (JSON, CSV).
Percentile arrays become `Percentiles`, keyed by the quantiles the view computed them at. NaN (an
aggregate over no rows) reads as None: a missing figure, while 0.0 stays a value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from siliconbench.collector.errors import CollectorError
from siliconbench.collector.points import Point
from siliconbench.collector.levels import QUANTILES

UTIL_QUANTILES = (0.5, 0.9)  # device and node utilisation (device_views: device_rollups, node_rollups: quantilesIf(0.5, 0.9))


def quantile_name(q: float) -> str:
    """0.5 -> 'p50', 0.99 -> 'p99': the field of `Percentiles` holding the value at quantile q."""
    return f"p{round(q * 100, 4):g}"


def _value(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Values at the quantiles of views.QUANTILES (a figure at UTIL_QUANTILES leaves p95 and p99 None)."""

    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, values: Sequence[float] | None, quantiles: Sequence[float] = QUANTILES) -> Percentiles | None:
        """The view's array (values at `quantiles`, in order) as Percentiles; None for an empty array."""
        if not values:
            return None
        return cls(**{quantile_name(q): _value(float(v)) for q, v in zip(quantiles, values, strict=True)})

    def at(self, q: float) -> float | None:
        return getattr(self, quantile_name(q))

    def as_list(self, quantiles: Sequence[float] = QUANTILES) -> list[float | None]:
        return [self.at(q) for q in quantiles]


class _OfPoint:
    """A record of one run on one node at one sweep point: found by its series' key and its point."""

    __slots__ = ()
    run_id: str
    agent_id: str
    mode: str
    concurrency: int
    rate_rps: float

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.agent_id)

    @property
    def point(self) -> Point:
        return Point.of({"mode": self.mode, "concurrency": self.concurrency, "rate_rps": self.rate_rps})

    def as_row(self) -> dict[str, Any]:
        """The view's row: its columns, in its order."""
        return _as_row(self)


@dataclass(frozen=True, slots=True)
class StepRow(_OfPoint):
    """One step of a run on one node (view step_results)."""

    run_id: str
    agent_id: str
    step: int
    concurrency: int = 0
    repetition: int = 0
    requests: int = 0
    errors: int = 0
    ok_requests: int = 0
    counted_requests: int = 0
    tokens_out: int = 0
    tokens_in: int = 0
    wall_s: float | None = None
    ttft_mean_ms: float | None = None
    itl_mean_ms: float | None = None
    itl_token_mean_ms: float | None = None
    tokens_per_chunk: float | None = None
    tpot_mean_ms: float | None = None
    e2e_mean_ms: float | None = None
    output_tps: float | None = None
    total_tps: float | None = None
    rps: float | None = None
    mean_in_flight: float | None = None
    ttft_ms: Percentiles | None = None
    itl_ms: Percentiles | None = None
    itl_token_ms: Percentiles | None = None
    tpot_ms: Percentiles | None = None
    e2e_ms: Percentiles | None = None
    good_requests: int | None = None
    good_tokens_out: int | None = None
    good_tokens_total: int | None = None
    goodput_rps: float | None = None
    goodput_output_tps: float | None = None
    goodput_total_tps: float | None = None
    has_server_tokens: int | None = None
    server_requests: float | None = None      # collector/server_views.py: vLLM's own figures over the step
    server_tokens_in: float | None = None
    server_tokens_out: float | None = None
    server_ttft_mean_ms: float | None = None
    server_itl_mean_ms: float | None = None
    server_tpot_mean_ms: float | None = None
    server_e2e_mean_ms: float | None = None
    prefix_cache_hit_rate: float | None = None
    has_step: int = 0
    mode: str = "closed"
    rate_rps: float = 0.0
    agent_cpu_pct: float | None = None
    loop_lag_p99_ms: float | None = None
    client_saturated: int = 0
    verdict: str | None = None                 # core/verdict.py; '' from older agents, None: no step row
    client_delay_p99_ms: float | None = None
    client_delay_share: float | None = None
    agent_processes_cpu_pct: float | None = None
    node_cpu_pct: float | None = None
    server_cpu_pct: float | None = None        # None: the server's processes were not on the node
    ended_early: int | None = None             # successful requests with fewer output tokens than asked
    tokens_asked: int | None = None            # output tokens a request asked for (0: an older agent's)
    dispatch_mean_ms: float | None = None
    dispatch_p99_ms: float | None = None
    sent_rps: float | None = None
    full_concurrency_share: float | None = None
    steady_s: float | None = None
    steady_output_tps: float | None = None
    kept: int | None = None                    # 1: read from the step's kept results (collector/kept.py); 0:
                                               # computed from its rows now (not kept yet, or kept before rows came)


@dataclass(frozen=True, slots=True)
class SweepFigures:
    """A sweep point's figures over its repetitions: each the median, the lowest or the highest."""

    requests: float | None = None
    errors: float | None = None
    ok_requests: float | None = None
    tokens_out: float | None = None
    tokens_in: float | None = None
    wall_s: float | None = None
    ttft_mean_ms: float | None = None
    itl_mean_ms: float | None = None
    itl_token_mean_ms: float | None = None
    tokens_per_chunk: float | None = None
    tpot_mean_ms: float | None = None
    e2e_mean_ms: float | None = None
    output_tps: float | None = None
    total_tps: float | None = None
    rps: float | None = None
    good_requests: float | None = None
    goodput_rps: float | None = None
    goodput_output_tps: float | None = None
    goodput_total_tps: float | None = None
    mean_in_flight: float | None = None
    sent_rps: float | None = None
    dispatch_mean_ms: float | None = None
    dispatch_p99_ms: float | None = None
    prefix_cache_hit_rate: float | None = None
    full_concurrency_share: float | None = None
    steady_s: float | None = None
    steady_output_tps: float | None = None
    server_requests: float | None = None
    server_tokens_in: float | None = None
    server_tokens_out: float | None = None
    server_ttft_mean_ms: float | None = None
    server_itl_mean_ms: float | None = None
    server_tpot_mean_ms: float | None = None
    server_e2e_mean_ms: float | None = None
    ttft_ms: Percentiles | None = None
    itl_ms: Percentiles | None = None
    itl_token_ms: Percentiles | None = None
    tpot_ms: Percentiles | None = None
    e2e_ms: Percentiles | None = None


_SPREAD = {"median": "", "low": "_min", "high": "_max"}  # PointRow field -> suffix of its view columns


@dataclass(frozen=True, slots=True)
class PointRow(_OfPoint):
    """One sweep point of a run on one node (view sweep_results): the median of its repetitions, with
    the lowest and highest repetition of each figure."""

    run_id: str
    agent_id: str
    mode: str = "closed"
    concurrency: int = 0
    rate_rps: float = 0.0
    repetitions: int = 1
    steps: tuple[int, ...] = ()
    saturated_steps: int = 0
    partial_steps: int = 0
    agent_cpu_pct_max: float | None = None
    loop_lag_p99_ms_max: float | None = None
    median: SweepFigures = field(default_factory=SweepFigures)
    low: SweepFigures = field(default_factory=SweepFigures)
    high: SweepFigures = field(default_factory=SweepFigures)

    @classmethod
    def of(cls, row: dict[str, Any]) -> PointRow:
        """From a sweep_results row: `x`, `x_min` and `x_max` become median.x, low.x and high.x."""
        row = dict(row)
        spread: dict[str, Any] = {}
        for part, suffix in _SPREAD.items():
            columns = {f.name: row.pop(f.name + suffix) for f in dataclasses.fields(SweepFigures)}
            spread[part] = record(SweepFigures, columns)
        return cls(**_values(cls, row, exclude=tuple(_SPREAD)), **spread)

    def as_row(self) -> dict[str, Any]:
        out = {f.name: _cell(f, getattr(self, f.name), QUANTILES) for f in dataclasses.fields(self)
               if f.name not in _SPREAD}
        for f in dataclasses.fields(SweepFigures):
            for part, suffix in _SPREAD.items():
                out[f.name + suffix] = _cell(f, getattr(getattr(self, part), f.name), QUANTILES)
        return out


@dataclass(frozen=True, slots=True)
class NodeRow(_OfPoint):
    """One node at one sweep point (view node_sweep): device figures pooled over its accelerators,
    median of the repetitions."""

    run_id: str
    agent_id: str
    mode: str = "closed"
    concurrency: int = 0
    rate_rps: float = 0.0
    repetitions: int = 1
    util_mean_pct: float | None = None
    util_pct: Percentiles | None = None     # at UTIL_QUANTILES
    host_cpu_mean_pct: float | None = None
    devices: int | None = None
    mem_peak_bytes: float | None = None
    power_mean_w: float | None = None
    energy_j: float | None = None
    energy_j_min: float | None = None
    energy_j_max: float | None = None
    j_per_output_token: float | None = None
    energy_method: str | None = None



@dataclass(frozen=True, slots=True)
class DeviceRow(_OfPoint):
    """One device at one sweep point (collector/rollups.py DEVICE_STEPS_SQL), median of the repetitions."""

    run_id: str
    agent_id: str
    mode: str = "closed"
    concurrency: int = 0
    rate_rps: float = 0.0
    source: str = ""
    device: str = ""
    repetitions: int = 1
    util_mean_pct: float | None = None
    util_pct: Percentiles | None = None     # at UTIL_QUANTILES
    mem_peak_bytes: float | None = None
    power_mean_w: float | None = None
    energy_j: float | None = None
    j_per_output_token: float | None = None
    energy_method: str | None = None



@dataclass(slots=True)
class Figures:
    """Everything a report shows about its series, as records from the views."""

    points: list[PointRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    nodes: list[NodeRow] = field(default_factory=list)
    devices: list[DeviceRow] = field(default_factory=list)

    def points_of(self, s: Keyed) -> list[PointRow]:
        """The series' sweep points, closed loop first by concurrency, then open loop by rate."""
        return sorted((p for p in self.points if p.key == s.key), key=lambda p: p.point.order())

    def steps_of(self, s: Keyed) -> list[StepRow]:
        return [p for p in self.steps if p.key == s.key]

    def steps_at(self, s: Keyed, p: PointRow) -> list[StepRow]:
        """The steps (repetitions) summarised in sweep point `p` of the series."""
        return [st for st in self.steps_of(s) if st.step in set(p.steps)]

    def node_of(self, s: Keyed, point: Point) -> NodeRow | None:
        return next((n for n in self.nodes if n.key == s.key and n.point == point), None)

    def devices_of(self, s: Keyed, point: Point) -> list[DeviceRow]:
        return [d for d in self.devices if d.key == s.key and d.point == point]


class Keyed(Protocol):
    """What the figures are looked up by: a series' (run id, agent id)."""

    @property
    def key(self) -> tuple[str, str]: ...


R = TypeVar("R")
# ClickHouse's quantiles over no value read 0 (a step without a successful request, a stream of one chunk);
# the mean over the same values is NULL then: a figure's percentiles exist where its mean does.
_MEAN_OF = {"ttft_ms": "ttft_mean_ms", "e2e_ms": "e2e_mean_ms", "tpot_ms": "tpot_mean_ms", "itl_ms": "itl_mean_ms",
            "itl_token_ms": "itl_token_mean_ms"}
_QUANTILES_OF = {NodeRow: UTIL_QUANTILES, DeviceRow: UTIL_QUANTILES}


def record(cls: type[R], row: dict[str, Any]) -> R:
    """`cls` from a view row: every column a field, every field a column (RollupMismatch otherwise),
    percentile arrays as Percentiles, NaN as None."""
    return cls(**_values(cls, row))


def _values(cls: type, row: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of `cls` (but `exclude`) from the row's columns, which must be exactly those."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    if list(row) != list(fields):
        raise RollupMismatch(f"{cls.__name__}: the view's columns {list(row)} are not the record's fields "
                             f"{list(fields)}; collector/views.py and collector/figures.py must change together")
    quantiles = _QUANTILES_OF.get(cls, QUANTILES)
    values = {name: (Percentiles.of(value, quantiles) if _is_percentiles(fields[name])
                     else tuple(value) if isinstance(value, list) else _value(value))
              for name, value in row.items()}
    for percentiles, mean in _MEAN_OF.items():
        if mean in values and values[mean] is None:
            values[percentiles] = None
    return values


class RollupMismatch(CollectorError):
    """A view's columns differ from the record that reads them. The store recreates its views at every
    open (Store.ensure_schema), so only a change to views.py without its record here gets this: the
    tests build every record from its view."""


def _is_percentiles(f: dataclasses.Field) -> bool:
    return "Percentiles" in str(f.type)


def _cell(f: dataclasses.Field, value: Any, quantiles: Sequence[float]) -> Any:
    """A field's value as the view's column: Percentiles as its array ([] for none), tuples as lists."""
    if _is_percentiles(f):
        return value.as_list(quantiles) if value is not None else []
    return list(value) if isinstance(value, tuple) else value


def _as_row(rec: Any) -> dict[str, Any]:
    quantiles = _QUANTILES_OF.get(type(rec), QUANTILES)
    return {f.name: _cell(f, getattr(rec, f.name), quantiles) for f in dataclasses.fields(rec)}
