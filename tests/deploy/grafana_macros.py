"""The ClickHouse plugin's SQL macros and Grafana's template variables, expanded as the plugin
(grafana-clickhouse-datasource 4.20.0, the version deploy/grafana installs) and Grafana expand them before a
query reaches ClickHouse, for the ones siliconbench's dashboards use.

The macros as the plugin's backend writes them (pkg/macros/macros.go): `$__timeFilter(c)` is
`c >= toDateTime(FROM) AND c <= toDateTime(TO)`, `$__fromTime`/`$__toTime` `toDateTime(FROM|TO)`,
`$__timeInterval(c)` `toStartOfInterval(toDateTime(c), INTERVAL N second)` and `$__interval_s` `N`, with N the
panel's interval in whole seconds, at least 1. Variables are replaced first, in the browser, by Grafana's
template service with the plugin's own default format (src/data/CHDatasource.ts `format`): a multi-value
variable's values as `'a','b'` (not escaped), a single value as it is; `${v:singlequote}` is Grafana's format:
each value quoted, `'` written `\\'`, joined by commas.
"""

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


def expand(sql: str, time: TimeRange, variables: Mapping[str, str | Sequence[str]]) -> str:
    """`sql` as ClickHouse receives it. `variables`: each variable's value (a str), or its selected values (a
    list: a multi-value variable, even with one value selected)."""

    def call(match: re.Match[str]) -> str:
        macro, column = match.group(1), match.group(2).strip()
        if macro == "timeFilter":
            return f"{column} >= toDateTime({time.from_s}) AND {column} <= toDateTime({time.to_s})"
        return f"toStartOfInterval(toDateTime({column}), INTERVAL {max(time.interval_s, 1)} second)"

    plain = {"__fromTime": f"toDateTime({time.from_s})", "__toTime": f"toDateTime({time.to_s})",
             "__interval_s": str(max(time.interval_s, 1))}

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in plain:
            return plain[name]
        if name not in variables:
            raise KeyError(f"no value for ${name} in {sql[:80]!r}")
        value = variables[name]
        values = [value] if isinstance(value, str) else list(value)
        if match.group(2) == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
        if match.group(2) is not None:
            raise KeyError(f"format :{match.group(2)} of ${name} is not expanded here")
        return value if isinstance(value, str) else "'" + "','".join(values) + "'"

    return _VARIABLE.sub(variable, _MACRO_CALL.sub(call, sql))
