"""The prices a plan uses: one per instance type for a region and kind (the newest `as_of`), from a CSV file
(`--prices FILE`, the `prices import` format) or the store's table, else the shipped default table when
the store's is empty. Each price keeps its date and source; a type without one is a row note, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from siliconbench.collector.prices import Price, default_file, read_csv
from siliconbench.collector.schema import PRICES
from siliconbench.collector.store import Store

STORED_SQL = """
SELECT instance_type, region, kind, usd_per_hour, currency, as_of, source, confidence
FROM {db}.prices FINAL
WHERE region = {region:String} AND kind = {kind:String}
ORDER BY instance_type, as_of DESC, imported_at DESC
LIMIT 1 BY instance_type
"""
_FIELDS = ("instance_type", "region", "kind", "usd_per_hour", "currency", "as_of", "source", "confidence")


@dataclass(frozen=True, slots=True)
class PriceBook:
    prices: dict[str, Price]
    region: str
    kind: str
    source: str

    def price(self, instance_type: str) -> Price | None:
        return self.prices.get(instance_type)

    def missing_note(self, instance_type: str) -> str:
        return (f"no {self.kind} price for {instance_type} in {self.region} ({self.source}): add a row to a "
                "price CSV (`prices import FILE`, or --prices FILE)")


def _from_rows(rows: list[list], region: str, kind: str) -> dict[str, Price]:
    index = [PRICES.names.index(f) for f in _FIELDS]
    prices: dict[str, Price] = {}
    for row in rows:
        price = Price(*(row[i] for i in index))
        if price.region == region and price.kind == kind:
            held = prices.get(price.instance_type)
            if held is None or price.as_of >= held.as_of:
                prices[price.instance_type] = price
    return prices


def prices_from_file(path: Path, region: str, kind: str) -> PriceBook:
    """InvalidPriceFile naming the line when the file breaks a rule."""
    return PriceBook(_from_rows(read_csv(path), region, kind), region, kind, f"price file {path}")


def prices_from_store(store: Store, region: str, kind: str) -> PriceBook:
    rows = store.query(STORED_SQL, {"region": region, "kind": kind}).result_rows
    if rows:
        return PriceBook({r[0]: Price(*r) for r in rows}, region, kind, "the store's price table")
    if store.query("SELECT count() FROM {db}.prices").result_rows[0][0]:
        return PriceBook({}, region, kind, "the store's price table")
    book = prices_from_file(default_file(), region, kind)
    return PriceBook(book.prices, region, kind, "the shipped default price table (the store's is empty)")
