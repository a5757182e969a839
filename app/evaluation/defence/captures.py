"""Grouping of trace rows into captures (cell_id, rep), in canonical order."""

from dataclasses import dataclass

import numpy as np

from .traces import DefenceTraces


@dataclass
class Captures:
    """Captures (cell_id, rep) in canonical order (by cell, then rep); rows of each are contiguous."""

    cell_id: np.ndarray
    rep: np.ndarray
    start: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.cell_id)


def _capture_key(cell_id: np.ndarray, rep: np.ndarray) -> np.ndarray:
    """One int64 per row, ordered like (cell_id, rep), so captures sort and compare in one array."""
    if len(cell_id) == 0:
        return np.zeros(0, dtype=np.int64)
    cell_min, rep_min = int(cell_id.min()), int(rep.min())
    cell_span, rep_span = int(cell_id.max()) - cell_min + 1, int(rep.max()) - rep_min + 1
    if cell_span * rep_span < 2**62:
        key = cell_id - cell_min
        key *= rep_span
        key += rep
        key -= rep_min
        return key
    _, cell_code = np.unique(cell_id, return_inverse=True)
    rep_values, rep_code = np.unique(rep, return_inverse=True)
    return cell_code.astype(np.int64) * len(rep_values) + rep_code


def _runs(cell_id: np.ndarray, rep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start of every run of rows of one capture, and whether the capture changes between consecutive rows."""
    change = cell_id[1:] != cell_id[:-1]
    change |= rep[1:] != rep[:-1]
    return np.concatenate(([0], np.flatnonzero(change) + 1)), change


def group_captures(traces: DefenceTraces) -> tuple[DefenceTraces, Captures]:
    """Return traces whose captures are contiguous runs in timestamp order, and the canonical captures.

    A file already grouped by capture (the usual case) is only touched where a capture's timestamps go
    backwards; otherwise rows are reordered by (capture, timestamp). Ties keep the file order.
    """
    if len(traces) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return traces, Captures(empty, empty, empty, empty)
    start, change = _runs(traces.cell_id, traces.rep)
    run_key = _capture_key(traces.cell_id[start], traces.rep[start])
    order = np.argsort(run_key, kind="stable")
    if len(run_key) > 1 and np.any(run_key[order[1:]] == run_key[order[:-1]]):
        # A capture's rows are spread over the file: sort every row (slow path, rare).
        key = _capture_key(traces.cell_id, traces.rep)
        rows = np.argsort(traces.timestamp, kind="stable")
        rows = rows[np.argsort(key[rows], kind="stable")]
        del key
        traces = traces.take(rows)
        start, change = _runs(traces.cell_id, traces.rep)
        order = np.arange(len(start))
    else:
        backwards = np.flatnonzero((traces.timestamp[1:] < traces.timestamp[:-1]) & ~change) + 1
        if len(backwards):
            traces = _sort_runs_by_time(traces, start, np.unique(np.searchsorted(start, backwards, "right") - 1))
    del change
    length = np.diff(np.append(start, len(traces)))
    start, length = start[order], length[order]
    return traces, Captures(traces.cell_id[start], traces.rep[start], start, length)


def _sort_runs_by_time(traces: DefenceTraces, start: np.ndarray, runs: np.ndarray) -> DefenceTraces:
    """Sort the rows of a few runs by timestamp, in place (the arrays belong to this evaluation).

    Row-level checks (types, sizes) run before grouping, so only known line numbers are carried along.
    """
    ends = np.append(start[1:], len(traces))
    size, timestamp, lines = traces.direction_size, traces.timestamp, traces.line_numbers
    if not (size.flags.writeable and timestamp.flags.writeable):
        size, timestamp = size.copy(), timestamp.copy()
    for run in runs:
        rows = slice(start[run], ends[run])
        order = np.argsort(timestamp[rows], kind="stable")
        size[rows], timestamp[rows] = size[rows][order], timestamp[rows][order]
        if lines is not None:
            lines[rows] = lines[rows][order]
    return DefenceTraces(traces.cell_id, traces.rep, size, timestamp, lines)


def captures_per_cell(captures: Captures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells present (sorted), index of their first capture and their number of captures."""
    cells, first, counts = np.unique(captures.cell_id, return_index=True, return_counts=True)
    return cells, first, counts
