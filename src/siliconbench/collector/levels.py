"""The quantile levels the store computes at: the reports' percentiles (exact) and the HTML report's
distribution charts (approximate). Kept step results (collector/kept.py) are stored at these levels, so
the kept table's declaration (schema.KEPT_STEPS) and every query that reads it use the same ones."""

from __future__ import annotations

QUANTILES = (0.5, 0.9, 0.95, 0.99)
# A distribution chart: the 2nd..98th percentile in steps of 2 (ClickHouse `quantiles`, a reservoir of 8,192
# values per state: a CDF drawn at 49 levels does not need exact values).
SPREAD_LEVELS = tuple(round(k / 50, 2) for k in range(1, 50))


def sql_levels(levels: tuple[float, ...]) -> str:
    """The levels as a ClickHouse parameter list: '0.5, 0.9, 0.95, 0.99'."""
    return ", ".join(str(level) for level in levels)
