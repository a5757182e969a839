"""Undefended traffic as a reference: per-cell medians, and a defence's overheads measured against them.

The website-fingerprinting literature (WTF-PAD, FRONT, Tamaraw, RegulaTor) reports what a defence costs as
bandwidth and time overhead relative to the same pages undefended; these are those figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import failure_message, not_run
from ..errors import ValidationError
from .captures import Captures, group_captures
from .checks import CHECK_NAMES, check_sizes
from .reading import read_defence
from .settings import DefenceSettings
from .traces import DefenceTraces
from .utility import capture_metrics

METRICS = ("bytes_in", "bytes_out", "bytes_total", "duration")
# Overhead name -> the metric it compares.
OVERHEADS = {
    "bandwidth_in": "bytes_in",
    "bandwidth_out": "bytes_out",
    "bandwidth_total": "bytes_total",
    "time": "duration",
}


@dataclass(frozen=True)
class CellMedians:
    """Per cell (ascending cell_id): median bytes received, sent, both, and duration over its captures."""

    cell_id: tuple[int, ...]
    bytes_in: tuple[float, ...]
    bytes_out: tuple[float, ...]
    bytes_total: tuple[float, ...]
    duration: tuple[float, ...]
    nb_captures: tuple[int, ...]

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict of columns (one list per field)."""
        return {name: list(getattr(self, name)) for name in ("cell_id", *METRICS, "nb_captures")}

    @classmethod
    def from_dict(cls, data: dict) -> CellMedians:
        """Rebuild from to_dict's output; ValueError when a column is missing or lengths differ."""
        names = ("cell_id", *METRICS, "nb_captures")
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"cell medians lack {', '.join(missing)}")
        if len({len(data[name]) for name in names}) != 1:
            raise ValueError("cell medians columns differ in length")
        return cls(
            cell_id=tuple(int(v) for v in data["cell_id"]),
            **{name: tuple(float(v) for v in data[name]) for name in METRICS},
            nb_captures=tuple(int(v) for v in data["nb_captures"]),
        )

    def column(self, name: str) -> np.ndarray:
        """One field as a numpy array."""
        return np.asarray(getattr(self, name), dtype=np.float64 if name in METRICS else np.int64)


def _group_medians(values: np.ndarray, group: np.ndarray, first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of `values` in each contiguous group (groups start at `first`, hold `counts` items)."""
    ordered = values[np.lexsort((values, group))]
    low, high = first + (counts - 1) // 2, first + counts // 2
    return (ordered[low] + ordered[high]) / 2


def medians_from_metrics(captures: Captures, metrics: dict[str, np.ndarray]) -> CellMedians:
    """Per-cell medians from capture metrics (capture_metrics' output, canonical capture order)."""
    cells, first, counts = np.unique(captures.cell_id, return_index=True, return_counts=True)
    group = np.repeat(np.arange(len(cells)), counts)
    values = {**metrics, "bytes_total": metrics["bytes_in"] + metrics["bytes_out"]}
    medians = {name: _group_medians(values[name], group, first, counts) for name in METRICS}
    return CellMedians(
        cell_id=tuple(cells.tolist()),
        **{name: tuple(medians[name].tolist()) for name in METRICS},
        nb_captures=tuple(counts.tolist()),
    )


def cell_medians(traces: DefenceTraces, captures: Captures | None = None) -> CellMedians:
    """Per-cell medians of a trace (grouped into captures here when `captures` is not given)."""
    if captures is None:
        traces, captures = group_captures(traces)
    return medians_from_metrics(captures, capture_metrics(traces, captures))


def compute_reference(zip_path: Path, settings: DefenceSettings) -> CellMedians:
    """Per-cell medians of undefended traffic, from a file in the defence upload format.

    Meant to run once per reference file (the result is small: store it with to_dict and reuse it).

    Raises:
        ValidationError: the file is not a readable defence-format zip, or has bad sizes or no capture.
    """
    traces, checks = read_defence(Path(zip_path), settings)
    if traces is None:
        checks += [not_run(name, "the file must be readable first (see above).") for name in CHECK_NAMES[2:3]]
        raise ValidationError(failure_message(checks, "reference"), checks)
    checks.append(check_sizes(traces))
    if not all(check.passed for check in checks):
        raise ValidationError(failure_message(checks, "reference"), checks)
    traces, captures = group_captures(traces)
    if len(captures) == 0:
        raise ValidationError("The reference holds no capture: give a file with undefended captures.")
    return cell_medians(traces, captures)


@dataclass
class Overheads:
    """A defence's overheads against a reference, in percent: the median over cells, and each cell's."""

    bandwidth_in: float | None
    bandwidth_out: float | None
    bandwidth_total: float | None
    time: float | None
    per_cell: dict[int, dict[str, float | None]]

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict; per_cell keys are cell ids as strings."""
        return {
            **{name: getattr(self, name) for name in OVERHEADS},
            "per_cell": {str(cell): figures for cell, figures in self.per_cell.items()},
        }


def ratios(defence: CellMedians, reference: CellMedians) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cells both have (ascending), and defence median / reference median there for each metric.

    A reference median of 0 gives NaN for that cell and metric (no ratio to take).

    Raises:
        ValueError: the defence and the reference have no cell in common.
    """
    cells, in_defence, in_reference = np.intersect1d(
        defence.column("cell_id"), reference.column("cell_id"), assume_unique=True, return_indices=True
    )
    if len(cells) == 0:
        raise ValueError("the defence and the reference have no cell in common")
    result = {}
    for name in METRICS:
        ours, theirs = defence.column(name)[in_defence], reference.column(name)[in_reference]
        with np.errstate(divide="ignore", invalid="ignore"):
            result[name] = np.where(theirs > 0, ours / np.where(theirs > 0, theirs, 1.0), np.nan)
    return cells, result


def figures_per_cell(defence: CellMedians, reference: CellMedians) -> list[dict]:
    """Per cell both have (ascending): the defence's and the reference's medians and their ratio, JSON-ready.

    What staff read to judge a `plausibility` failure; a ratio is None where the reference median is 0.

    Raises:
        ValueError: the defence and the reference have no cell in common.
    """
    cells, ratio = ratios(defence, reference)
    ours = {int(c): i for i, c in enumerate(defence.cell_id)}
    theirs = {int(c): i for i, c in enumerate(reference.cell_id)}
    rows = []
    for k, cell in enumerate(cells.tolist()):
        row: dict = {"cell_id": int(cell), "nb_captures": defence.nb_captures[ours[cell]]}
        for name in ("bytes_in", "bytes_out", "duration"):
            value = ratio[name][k]
            row[name] = getattr(defence, name)[ours[cell]]
            row[f"reference_{name}"] = getattr(reference, name)[theirs[cell]]
            row[f"{name}_ratio"] = float(value) if np.isfinite(value) else None
        rows.append(row)
    return rows


def compute_overheads(defence: CellMedians, reference: CellMedians) -> Overheads:
    """Bandwidth overhead in, out and total, and time overhead, each the median over cells of
    (defence median / reference median - 1), in percent; the same figures per cell.

    Only cells present in both count. Cells where the reference median is 0 are left out of that figure
    (None per cell, and None overall if every cell is left out: JSON columns take no NaN).

    Raises:
        ValueError: the defence and the reference have no cell in common.
    """
    cells, ratio = ratios(defence, reference)
    percent = {name: (ratio[metric] - 1.0) * 100.0 for name, metric in OVERHEADS.items()}
    overall = {}
    for name, values in percent.items():
        finite = values[np.isfinite(values)]
        overall[name] = float(np.median(finite)) if len(finite) else None
    per_cell = {
        int(cell): {name: (float(values[i]) if np.isfinite(values[i]) else None) for name, values in percent.items()}
        for i, cell in enumerate(cells)
    }
    return Overheads(**overall, per_cell=per_cell)
