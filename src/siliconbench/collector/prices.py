"""Instance prices: a `prices` table loaded from CSV, and the cost of a million tokens.

Cost per 1M tokens = hourly price ÷ (tokens/s × 3600) × 10⁶ (DESIGN §3), for a named throughput.
The shipped default (collector/data/prices.csv, a copy of the project's dated seed table) is loaded
into an empty table by `serve` and `prices import` (reports only read the table: they never write);
`siliconbench-collector prices import FILE` adds or replaces rows.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from siliconbench.collector.errors import InvalidPriceFile, PriceMissing
from siliconbench.collector.schema import PRICES
from siliconbench.collector.store import Store

KINDS = ("on_demand", "spot", "capacity_block", "savings_plan", "custom")
REQUIRED = ("instance_type", "region", "kind", "usd_per_hour", "as_of", "source")
FORMULA = "$/1M tokens = USD per hour ÷ (tokens/s × 3600) × 10⁶"


@dataclass(frozen=True, slots=True)
class Price:
    instance_type: str
    region: str
    kind: str
    usd_per_hour: float
    currency: str
    as_of: str
    source: str
    confidence: str

    def describe(self) -> str:
        return (f"{self.instance_type} {self.region} {self.kind} ${self.usd_per_hour:,.4g}/h "
                f"(as of {self.as_of}; {self.confidence or 'unrated'} confidence; {self.source})")


def usd_per_million(usd_per_hour: float, tokens_per_s: float | None) -> float | None:
    """The formula; None when nothing was produced (no cost can be stated)."""
    if not tokens_per_s or tokens_per_s <= 0 or not math.isfinite(tokens_per_s):
        return None
    return usd_per_hour / (tokens_per_s * 3600) * 1e6


def _kind_ok(kind: str) -> bool:
    """A known kind, optionally qualified: `on_demand`, `on_demand_pre_2025_06`, `spot_us_east_1a`..."""
    return any(kind == k or kind.startswith(k + "_") for k in KINDS)


def read_csv(path: Path) -> list[list]:
    """Rows for the prices table; InvalidPriceFile naming the line and the rule it breaks."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise InvalidPriceFile(f"{path}: missing column(s) {', '.join(missing)}; "
                                       f"the header needs {', '.join(REQUIRED)} (currency, confidence optional)")
            now = time.time_ns()
            return [_row(path, line, record, now) for line, record in enumerate(reader, start=2)]
    except OSError as exc:
        raise InvalidPriceFile(f"cannot read price file {path}: {exc.strerror}") from None


def _row(path: Path, line: int, r: dict, now: int) -> list:
    where = f"{path}:{line}"
    for column in REQUIRED:
        if not (r.get(column) or "").strip():
            raise InvalidPriceFile(f"{where}: {column} is empty")
    kind = r["kind"].strip()
    if not _kind_ok(kind):
        raise InvalidPriceFile(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)} "
                               "(a qualifier may follow, e.g. on_demand_pre_2025_06)")
    try:
        price = float(r["usd_per_hour"])
    except ValueError:
        raise InvalidPriceFile(f"{where}: usd_per_hour {r['usd_per_hour']!r} is not a number") from None
    if not math.isfinite(price) or price <= 0:
        raise InvalidPriceFile(f"{where}: usd_per_hour must be a positive number, got {price}")
    try:
        memory = float(r.get("accelerator_memory_gb") or 0)
    except ValueError:
        raise InvalidPriceFile(f"{where}: accelerator_memory_gb {r['accelerator_memory_gb']!r} is not a number") from None
    return PRICES.row(instance_type=r["instance_type"].strip(), region=r["region"].strip(), kind=kind,
                      usd_per_hour=price, currency=(r.get("currency") or "USD").strip(), as_of=r["as_of"].strip(),
                      accelerators=(r.get("accelerators") or "").strip(), accelerator_memory_gb=memory,
                      confidence=(r.get("confidence") or "").strip(), source=r["source"].strip(), imported_at=now)


def import_csv(store: Store, path: Path) -> int:
    """Store the file's prices (a row with the same type, region, kind and date replaces the old one)."""
    rows = read_csv(path)
    store.insert("prices", rows, f"prices/{path.name}/{time.time_ns()}")
    return len(rows)


def default_file() -> Path:
    return Path(str(resources.files("siliconbench.collector") / "data" / "prices.csv"))


def ensure_prices(store: Store) -> None:
    """Load the shipped default when the table is empty."""
    if store.query("SELECT count() FROM {db}.prices").result_rows[0][0] == 0:
        import_csv(store, default_file())


PRICE_SQL = """
SELECT instance_type, region, kind, usd_per_hour, currency, as_of, source, confidence
FROM {db}.prices FINAL
WHERE instance_type = {instance_type:String} AND region = {region:String} AND kind = {kind:String}
ORDER BY as_of DESC, imported_at DESC
LIMIT 1
"""

AVAILABLE_SQL = """
SELECT DISTINCT region, kind FROM {db}.prices FINAL WHERE instance_type = {instance_type:String} ORDER BY region, kind
"""


def price_for(store: Store, instance_type: str, region: str, kind: str) -> Price:
    """The newest price row; PriceMissing naming the type and how to add a price otherwise."""
    params = {"instance_type": instance_type, "region": region, "kind": kind}
    rows = store.query(PRICE_SQL, params).result_rows
    if rows:
        return Price(*rows[0])
    others = store.query(AVAILABLE_SQL, {"instance_type": instance_type}).result_rows
    have = f" (it has prices for {', '.join(f'{r} {k}' for r, k in others)})" if others else ""
    raise PriceMissing(
        f"instance type {instance_type!r} has no {kind} price for {region}{have}: add a row "
        f"(instance_type,region,kind,usd_per_hour,currency,as_of,source) to a CSV and run "
        f"`siliconbench-collector prices import FILE`, or choose --price-region/--price-kind, or --no-cost")


def list_prices(store: Store) -> list[tuple]:
    return store.query("SELECT instance_type, region, kind, usd_per_hour, currency, as_of, confidence, source "
                       "FROM {db}.prices FINAL ORDER BY instance_type, region, kind, as_of").result_rows
