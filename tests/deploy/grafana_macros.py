"""The ClickHouse plugin's SQL macros and Grafana's template variables, expanded as the plugin
(grafana-clickhouse-datasource 4.x) and Grafana expand them before a query reaches ClickHouse, for the
ones siliconbench's dashboards use."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range (Unix seconds) and the panel's interval."""

    from_s: int
    to_s: int
    interval_s: int = 10


_MACRO_CALL = re.compile(r"\$__(timeFilter|timeInterval)\(([^()]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def expand(sql: str, time: TimeRange, variables: Mapping[str, Sequence[str]]) -> str:
    """`sql` as ClickHouse receives it. `variables`: each variable's selected values (several: multi-value)."""

    def call(match: re.Match[str]) -> str:
        macro, column = match.group(1), match.group(2).strip()
        if macro == "timeFilter":
            return f"{column} >= toDateTime({time.from_s}) AND {column} <= toDateTime({time.to_s})"
        return f"toStartOfInterval(toDateTime({column}), INTERVAL {time.interval_s} second)"

    plain = {"__fromTime": f"toDateTime({time.from_s})", "__toTime": f"toDateTime({time.to_s})",
             "__interval_s": str(time.interval_s)}

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in plain:
            return plain[name]
        if name not in variables:
            raise KeyError(f"no value for ${name} in {sql[:80]!r}")
        values = variables[name]
        if match.group(2) == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
        if match.group(2) is not None:
            raise KeyError(f"format :{match.group(2)} of ${name} is not expanded here")
        return ",".join(values)

    return _VARIABLE.sub(variable, _MACRO_CALL.sub(call, sql))
