"""Markdown fitted to a terminal: a report printed to a TTY has lines up to ~750 characters (the step
table has 20 columns), which wrap into an unreadable wall. Printed to a terminal, each table keeps the
columns that fit, left to right (the first one, what the row is, always), each cell cut to CELL_MAX
characters, and a line under it names the columns left out; prose is wrapped. Files and pipes get the
full Markdown (`-o FILE`), so nothing is lost, only deferred.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from pathlib import Path

import typer

from siliconbench.core.cli import fail

CELL_MAX = 28  # a scenario label, a number with its unit, or the start of a note
_CELL_SPLIT = re.compile(r"(?<!\\)\|")  # cells are split on |, not on the \| escaped inside a cell


def emit(text: str, output: Path | None, fmt: str = "markdown") -> None:
    """`text` to `output` (a failed write is one error line naming the file), else to standard output:
    Markdown fitted to the terminal when that is one."""
    if output is None:
        typer.echo(for_stdout(text, fmt), nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror}") from None
    typer.echo(f"wrote {output}", err=True)


def for_stdout(text: str, fmt: str) -> str:
    """`text` as it should reach standard output: Markdown fitted to the terminal when that is one."""
    if fmt == "markdown" and sys.stdout.isatty():
        return fit_markdown(text, shutil.get_terminal_size().columns)
    return text


def fit_markdown(text: str, width: int) -> str:
    """`text` with every table narrowed and every prose line wrapped to at most `width` characters."""
    width = max(width, 40)
    lines, out = text.split("\n"), []
    i = 0
    while i < len(lines):
        if lines[i].startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out += _fit_table(lines[i:j], width)
            i = j
        else:
            out += _wrap(lines[i], width)
            i += 1
    return "\n".join(out)


def _wrap(line: str, width: int) -> list[str]:
    if len(line) <= width:
        return [line]
    indent = re.match(r"\s*(?:[-*] |> )?", line)
    lead = indent.group(0) if indent else ""
    return textwrap.wrap(line, width, subsequent_indent=" " * len(lead), break_on_hyphens=False) or [line]


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in _CELL_SPLIT.split(row.strip())[1:-1]]


def _cut(cell: str) -> str:
    return cell if len(cell) <= CELL_MAX else cell[: CELL_MAX - 1] + "…"


def _fit_table(rows: list[str], width: int) -> list[str]:
    header, aligns, body = _cells(rows[0]), _cells(rows[1]) if len(rows) > 1 else [], [_cells(r) for r in rows[2:]]
    if max(len(r) for r in rows) <= width:
        return rows
    table = [[_cut(c) for c in header]] + [[_cut(c) for c in row] for row in body]
    sizes = [max(len(row[k]) if k < len(row) else 0 for row in table) for k in range(len(header))]
    kept: list[int] = []
    used = 1
    for k, size in enumerate(sizes):
        if used + size + 3 > width and kept:
            break
        kept.append(k)
        used += size + 3
    left_out = [header[k] for k in range(len(header)) if k not in kept]
    right = {k for k in kept if k < len(aligns) and aligns[k].endswith(":")}  # numbers, as Markdown aligns them

    def line(row: list[str]) -> str:
        cells = [(row[k] if k < len(row) else "") for k in kept]
        return "| " + " | ".join(c.rjust(sizes[k]) if k in right else c.ljust(sizes[k])
                                 for c, k in zip(cells, kept)) + " |"

    out = [line(table[0]), "|" + "|".join(_rule(aligns[k] if k < len(aligns) else "", sizes[k]) for k in kept) + "|"]
    out += [line(row) for row in table[1:]]
    if left_out:
        out += _wrap(f"({len(left_out)} more columns: {', '.join(left_out)}; `-o FILE` writes the full table)", width)
    return out


def _rule(align: str, size: int) -> str:
    return "-" * (size + 1) + ":" if align.endswith(":") else "-" * (size + 2)
