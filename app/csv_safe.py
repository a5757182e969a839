"""Spreadsheet-safe CSV cells: a cell a spreadsheet would read as a formula is prefixed with a quote."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """The cell, with a leading `'` when it is text starting like a formula (`=`, `+`, `-`, `@`, tab, CR)."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell
