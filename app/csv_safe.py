"""CSV cells that a spreadsheet cannot run as formulas (CSV injection), whatever separator it splits on.

A text cell is neutralised wherever a formula could start: at its beginning, and after any `;`, `,`, tab or line
break, for a spreadsheet that splits cells there (`;` in many European locales). Quoting stays minimal (only
cells holding a comma, quote or line break), so scripts that read the exports keep working as they are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

# A spreadsheet treats a cell starting with one of these as a formula (tab and CR can hide one after them).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# A formula start at the beginning of the text or after a separator a spreadsheet may split on.
_FORMULA_AFTER_SEPARATOR = re.compile(r"(^|[;,\t\r\n])([=+\-@\t\r])")


def neutralise(cell: Any) -> Any:
    """Prefix with a quote every part of a text cell that a spreadsheet would read as a formula (at the start and
    after `;`, `,`, tab or line breaks); other values pass through."""
    if isinstance(cell, str):
        return _FORMULA_AFTER_SEPARATOR.sub(lambda m: f"{m.group(1)}'{m.group(2)}", cell)
    return cell


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The CSV text of a header and rows, every cell neutralised (None becomes an empty cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
    return out.getvalue()
