"""A report table as data: each column a title, a kind (how renderers format it) and a getter from the
row's source; `build` turns a declaration and its sources into the rows every renderer shows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from siliconbench.collector.checks import Finding

# Column kinds tell renderers how to format a value; CSV/JSON keep the raw number.
TEXT, INT, MS, TPS, RPS, USD, PCT, JOULE, WATT, GB, RATIO, REL, NUM = (
    "text", "int", "ms", "tok/s", "req/s", "usd", "pct", "J", "W", "GB", "x", "rel", "num")
LOAD_COLUMNS = ("Load", "at", "load")  # the columns that name a row's sweep point (collector/points.py)

@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str = TEXT


@dataclass(slots=True)
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    caption: str = ""
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Cell:
    """A declared column: its title and kind, and the getter of its value from one row's source."""

    name: str
    kind: str
    get: Callable[[Any], Any]


def cell(name: str, kind: str, get: Callable[[Any], Any]) -> Cell:
    return Cell(name, kind, get)


@dataclass(frozen=True, slots=True)
class Declared:
    """A table declared as data: key, title, columns; the caption comes with the build (it may name the
    report's SLOs or prices), `empty` leads the caption when no source gave a row."""

    key: str
    title: str
    cells: tuple[Cell, ...]
    empty: str = ""

    def build(self, sources: Iterable[Any], caption: str, title: str | None = None) -> Table:
        rows = [[c.get(source) for c in self.cells] for source in sources]
        if not rows and self.empty:
            caption = self.empty + caption
        return Table(self.key, title or self.title, [Column(c.name, c.kind) for c in self.cells], rows, caption)
