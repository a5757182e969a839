"""Defence evaluation: read an uploaded trace, check it, measure its utility, split and write the sets.

Row numbers in messages are *line numbers of the CSV file*, the header being line 1.
When the columns or the value types are wrong, the checks that need typed values are still listed,
as failed with a message that they could not run, so a student sees the whole list every time.
"""

import csv
import math
import os
import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from app.evaluation.archive import inspect_upload, open_capped
from app.evaluation.errors import CheckResult, ValidationError

INTEGER_COLUMNS = ("cell_id", "rep", "direction_size")
FLOAT_COLUMNS = ("timestamp",)
MAX_EXAMPLES = 5
MAX_PACKET_SIZE = 65535
TEST_ID_RANGE = (10**8, 2**31)
TRAIN_REP_RANGE = (1, 10**6)
CHECK_NAMES = (
    "columns",
    "types",
    "sizes",
    "cells",
    "repetitions",
    "capture_length",
    "capture_count",
)
_WRITE_BATCH_ROWS = 1 << 18
_WRITE_THREADS = 2
_DEFLATE_LEVEL = 1
_READ_BLOCK_BYTES = 1 << 20


@dataclass
class DefenceSettings:
    """Competition parameters a defence is checked and split against."""

    nb_classes: int = 100
    mean_nb_rep_per_class: int = 32
    deviation_nb_rep_per_class: int = 7
    rows_per_capture: int = 5
    nb_traces_to_classify: int = 300
    columns: tuple[str, ...] = ("cell_id", "rep", "direction_size", "timestamp")
    max_uncompressed_bytes: int = 2 * 1024**3

    def __post_init__(self) -> None:
        if self.nb_traces_to_classify < self.nb_classes:
            raise ValueError("nb_traces_to_classify must be at least nb_classes (one test capture per cell)")
        if set(self.columns) != set(INTEGER_COLUMNS + FLOAT_COLUMNS):
            raise ValueError(f"columns must be {INTEGER_COLUMNS + FLOAT_COLUMNS} in any order")


@dataclass
class DefenceTraces:
    """Typed columns of a defence upload; `line_numbers[i]` is the file line of row i (None: i + 2)."""

    cell_id: np.ndarray
    rep: np.ndarray
    direction_size: np.ndarray
    timestamp: np.ndarray
    line_numbers: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.cell_id = np.asarray(self.cell_id, dtype=np.int64)
        self.rep = np.asarray(self.rep, dtype=np.int64)
        self.direction_size = np.asarray(self.direction_size, dtype=np.int64)
        self.timestamp = np.asarray(self.timestamp, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.cell_id)

    def line(self, row: int) -> int:
        """Line of the CSV file holding data row `row` (0-based), the header being line 1."""
        return int(self.line_numbers[row]) if self.line_numbers is not None else int(row) + 2

    def take(self, order: np.ndarray) -> "DefenceTraces":
        lines = self.line_numbers[order] if self.line_numbers is not None else order + 2
        return DefenceTraces(
            self.cell_id[order], self.rep[order], self.direction_size[order], self.timestamp[order], lines
        )


@dataclass
class Captures:
    """Captures (cell_id, rep) in canonical order (by cell, then rep); rows of each are contiguous."""

    cell_id: np.ndarray
    rep: np.ndarray
    start: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.cell_id)


@dataclass
class DefenceSplit:
    """Which captures (indexes into Captures) go to the test set, with their new ids."""

    test: np.ndarray  # capture indexes, in the order they are written to the test file
    test_capture_id: np.ndarray  # new id of each test capture, aligned with `test`
    train: np.ndarray  # capture indexes, in the order they are written to the train file
    train_rep: np.ndarray  # new rep of each train capture, aligned with `train`


@dataclass
class DefenceResult:
    """Everything the platform records about an accepted defence."""

    checks: list[CheckResult]
    utility: dict
    utility_score: float
    nb_rows: int
    nb_captures: int
    seed: int
    train_path: Path
    test_path: Path
    verification_path: Path
    nb_train_captures: int
    nb_test_captures: int

    def to_dict(self) -> dict:
        """JSON-serialisable summary, without the file paths."""
        return {
            "checks": [check.to_dict() for check in self.checks],
            "utility": self.utility,
            "utility_score": self.utility_score,
            "nb_rows": self.nb_rows,
            "nb_captures": self.nb_captures,
            "seed": self.seed,
            "nb_train_captures": self.nb_train_captures,
            "nb_test_captures": self.nb_test_captures,
        }


# ---------------------------------------------------------------------------------------------- helpers


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _have(count: int) -> str:
    return "has" if count == 1 else "have"


def _list_values(values, limit: int = 10) -> str:
    values = [str(v) for v in values]
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _passed(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, passed=True, message=message)


def _not_run(name: str, reason: str) -> CheckResult:
    return CheckResult(name=name, passed=False, message=f"Not checked: {reason}")


def failure_message(checks: list[CheckResult]) -> str:
    """One sentence summarising failed checks, for the top of the page."""
    failed = [check.name for check in checks if not check.passed]
    return (
        f"The defence failed {_plural(len(failed), 'check')} ({', '.join(failed)}): "
        "fix the problems listed and upload it again."
    )


# ---------------------------------------------------------------------------------------------- reading


def _read_header(zip_path: Path, member: str, max_bytes: int) -> list[str]:
    with open_capped(zip_path, member, max_bytes) as stream:
        head = b""
        while b"\n" not in head and len(head) < (1 << 20):
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            head += chunk
    line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig", errors="replace")
    return next(csv.reader([line]), [])


def check_columns(header: list[str], settings: DefenceSettings) -> CheckResult:
    """The header must name exactly the expected columns, in any order."""
    expected = list(settings.columns)
    missing = [name for name in expected if name not in header]
    unexpected = [name for name in header if name not in expected]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if not (missing or unexpected or duplicated):
        return _passed("columns", f"The columns are {', '.join(expected)}.")
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing))}")
    if unexpected:
        parts.append(f"unexpected {', '.join(map(repr, unexpected))}")
    if duplicated:
        parts.append(f"repeated {', '.join(map(repr, duplicated))}")
    return CheckResult(
        name="columns",
        passed=False,
        message=(
            f"The first line must name exactly the columns {', '.join(expected)} (any order): {'; '.join(parts)}."
        ),
        count=len(missing) + len(unexpected) + len(duplicated),
        examples=(
            [f"missing column {n!r}" for n in missing]
            + [f"unexpected column {n!r}" for n in unexpected]
            + [f"repeated column {n!r}" for n in duplicated]
        )[:MAX_EXAMPLES],
    )


def _column_types() -> dict[str, pa.DataType]:
    types = {name: pa.int64() for name in INTEGER_COLUMNS}
    types.update({name: pa.float64() for name in FLOAT_COLUMNS})
    return types


def _values(column: pa.Array, dtype: np.dtype) -> np.ndarray:
    """Zero-copy view of a null-free primitive Arrow array (Array.to_numpy would import pandas)."""
    assert column.null_count == 0
    return np.frombuffer(column.buffers()[1], dtype=dtype, count=len(column), offset=column.offset * dtype.itemsize)


def _read_typed(zip_path: Path, member: str, max_bytes: int) -> DefenceTraces:
    """Fast path: stream typed record batches straight into numpy arrays.

    Arrays are allocated for the most rows the member can hold (8 bytes per row at least); pages never
    written are never resident, so memory follows the real row count without a concatenation copy.
    """
    with zipfile.ZipFile(zip_path) as archive:
        declared = archive.getinfo(member).file_size
    capacity = min(declared, max_bytes) // 8 + 1
    names = INTEGER_COLUMNS + FLOAT_COLUMNS
    arrays = [np.empty(capacity, dtype=np.int64) for _ in INTEGER_COLUMNS]
    arrays += [np.empty(capacity, dtype=np.float64) for _ in FLOAT_COLUMNS]
    nb_rows = 0
    with open_capped(zip_path, member, max_bytes) as stream:
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(use_threads=True, block_size=_READ_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=_column_types(),
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        positions = [reader.schema.get_field_index(name) for name in names]
        for batch in reader:
            end = nb_rows + batch.num_rows
            if end > len(arrays[0]):  # only if the archive under-declared its size
                arrays = [np.concatenate((array[:nb_rows], np.empty(2 * end, array.dtype))) for array in arrays]
            for array, position in zip(arrays, positions, strict=True):
                array[nb_rows:end] = _values(batch.column(position), array.dtype)
            nb_rows = end
    pa.default_memory_pool().release_unused()
    return DefenceTraces(*(array[:nb_rows] for array in arrays))


_INTEGER_PATTERN = r"^[ \t]*-?[0-9]{1,18}[ \t]*$"
_FLOAT_PATTERN = r"(?i)^[ \t]*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity|nan)[ \t]*$"


def _read_diagnostics(zip_path: Path, member: str, max_bytes: int) -> tuple[DefenceTraces | None, CheckResult]:
    """Slow path, run only when the typed parse failed: find every bad row and say why."""
    invalid_rows: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        invalid_rows.append(
            (row.number, f"line {row.number}: has {row.actual_columns} fields, expected {row.expected_columns}")
        )
        return "skip"

    names = INTEGER_COLUMNS + FLOAT_COLUMNS
    with open_capped(zip_path, member, max_bytes) as stream:
        table = pa_csv.read_csv(
            stream,
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=_READ_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=on_invalid),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    nb_kept = table.num_rows
    skipped = np.array(sorted(number for number, _ in invalid_rows if number is not None), dtype=np.int64)
    lines = np.arange(2, nb_kept + len(skipped) + 2, dtype=np.int64)
    if len(skipped):
        lines = np.delete(lines, skipped - 2)
    # Blank lines come through as rows of empty cells: forgive them, they carry no data.
    blank = np.ones(nb_kept, dtype=bool)
    for name in names:
        blank &= pc.equal(table.column(name), "").to_numpy(zero_copy_only=False)
    if blank.any():
        keep = np.flatnonzero(~blank)
        table = table.take(keep)
        lines = lines[keep]

    problems: list[tuple[int, str]] = list(invalid_rows)
    bad_rows = np.zeros(table.num_rows, dtype=bool)
    for name in names:
        column = table.column(name)
        pattern = _INTEGER_PATTERN if name in INTEGER_COLUMNS else _FLOAT_PATTERN
        valid = pc.match_substring_regex(column, pattern).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~valid)
        bad_rows[bad] = True
        kind = "a whole number" if name in INTEGER_COLUMNS else "a number"
        for row in bad[:MAX_EXAMPLES]:
            value = column[int(row)].as_py()
            why = "is empty" if value == "" else f"is not {kind}"
            problems.append((int(lines[row]), f"line {lines[row]}: {name} = {value!r} {why}"))
    traces = None
    if not bad_rows.any():
        try:
            arrays = [
                pc.cast(pc.utf8_trim_whitespace(table.column(name)), _column_types()[name]).to_numpy() for name in names
            ]
            traces = DefenceTraces(*arrays, line_numbers=lines)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            problems.append((0, f"the values could not be read as numbers ({exc})"))
    nb_bad = int(bad_rows.sum()) + len(invalid_rows)
    if traces is not None:
        timestamp_check = _check_timestamps(traces)
        if not invalid_rows:
            return traces, timestamp_check
        nb_bad += timestamp_check.count
        problems += [(int(e.split(":")[0].split()[1]), e) for e in timestamp_check.examples]
    problems.sort()
    return traces if not invalid_rows else None, CheckResult(
        name="types",
        passed=False,
        message=(
            f"{_plural(nb_bad, 'row')} cannot be read: every row needs 4 fields; cell_id, rep and "
            "direction_size must be whole numbers and timestamp a finite number >= 0, with no empty "
            "cells (line numbers count the header as line 1)."
        ),
        count=nb_bad,
        examples=[text for _, text in problems[:MAX_EXAMPLES]],
    )


def _check_timestamps(traces: DefenceTraces) -> CheckResult:
    timestamp = traces.timestamp
    bad = np.flatnonzero(~(timestamp >= 0) | ~np.isfinite(timestamp))
    if len(bad) == 0:
        return _passed(
            "types",
            "cell_id, rep and direction_size are whole numbers and timestamp a finite number >= 0.",
        )
    examples = []
    for row in bad[:MAX_EXAMPLES]:
        value = float(timestamp[row])
        why = "is negative" if value < 0 and math.isfinite(value) else "is not a finite number"
        examples.append(f"line {traces.line(row)}: timestamp = {value!r} {why}")
    return CheckResult(
        name="types",
        passed=False,
        message=(
            f"{_plural(len(bad), 'row')} {_have(len(bad))} a timestamp that is negative or not a finite number: "
            "timestamps are seconds since the capture's first packet (line numbers count the header as line 1)."
        ),
        count=len(bad),
        examples=examples,
    )


def read_defence(zip_path: Path, settings: DefenceSettings) -> tuple[DefenceTraces | None, list[CheckResult]]:
    """Read an upload; return its traces (None when unusable) and the `columns` and `types` checks.

    Archive problems (not a zip, several files, too large...) raise ValidationError directly.
    """
    max_bytes = settings.max_uncompressed_bytes
    member = inspect_upload(zip_path, max_member_bytes=max_bytes)
    columns_check = check_columns(_read_header(zip_path, member, max_bytes), settings)
    if not columns_check.passed:
        return None, [columns_check, _not_run("types", "the columns must be right first.")]
    try:
        traces = _read_typed(zip_path, member, max_bytes)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:
            traces, types_check = _read_diagnostics(zip_path, member, max_bytes)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            # Not even readable as text: binary data, another encoding than UTF-8, unbalanced quotes...
            types_check = CheckResult(
                name="types",
                passed=False,
                message=(
                    "The file cannot be read as CSV text: save it as plain UTF-8 CSV with one packet per line "
                    f"(the reader said: {exc})."
                ),
                count=1,
            )
            return None, [columns_check, types_check]
        return traces, [columns_check, types_check]
    return traces, [columns_check, _check_timestamps(traces)]


# ---------------------------------------------------------------------------------------------- captures


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


def _captures_per_cell(captures: Captures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells present (sorted), index of their first capture and their number of captures."""
    cells, first, counts = np.unique(captures.cell_id, return_index=True, return_counts=True)
    return cells, first, counts


# ---------------------------------------------------------------------------------------------- checks


def check_sizes(traces: DefenceTraces) -> CheckResult:
    """Packet sizes are non-zero and fit an IP packet."""
    size = traces.direction_size
    bad = np.flatnonzero((size == 0) | (size > MAX_PACKET_SIZE) | (size < -MAX_PACKET_SIZE))
    if len(bad) == 0:
        return _passed("sizes", f"Every direction_size is non-zero and at most {MAX_PACKET_SIZE} in absolute value.")
    return CheckResult(
        name="sizes",
        passed=False,
        message=(
            f"{_plural(len(bad), 'row')} {_have(len(bad))} a direction_size of 0 or beyond ±{MAX_PACKET_SIZE}: "
            "use the packet's size in bytes, positive when sent by the client, negative when received "
            "(line numbers count the header as line 1)."
        ),
        count=len(bad),
        examples=[
            f"line {traces.line(r)}: direction_size = {int(traces.direction_size[r])}" for r in bad[:MAX_EXAMPLES]
        ],
    )


def check_cells(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """The cells are exactly 1..nb_classes."""
    present = np.unique(captures.cell_id)
    expected = np.arange(1, settings.nb_classes + 1)
    missing = np.setdiff1d(expected, present)
    unexpected = np.setdiff1d(present, expected)
    if len(missing) == 0 and len(unexpected) == 0:
        return _passed("cells", f"Every cell from 1 to {settings.nb_classes} is present, and no other.")
    parts = []
    if len(missing):
        parts.append(f"missing {_plural(len(missing), 'cell')}: {_list_values(missing)}")
    if len(unexpected):
        parts.append(f"unexpected {_plural(len(unexpected), 'cell')}: {_list_values(unexpected)}")
    return CheckResult(
        name="cells",
        passed=False,
        message=f"cell_id must take every value from 1 to {settings.nb_classes} and no other; {'; '.join(parts)}.",
        count=len(missing) + len(unexpected),
        examples=(
            [f"cell {c} is missing" for c in missing] + [f"cell {c} is not a cell of the grid" for c in unexpected]
        )[:MAX_EXAMPLES],
    )


def check_repetitions(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """Each cell has between mean - deviation and mean + deviation captures (distinct reps)."""
    low = settings.mean_nb_rep_per_class - settings.deviation_nb_rep_per_class
    high = settings.mean_nb_rep_per_class + settings.deviation_nb_rep_per_class
    cells, _, counts = _captures_per_cell(captures)
    bad = np.flatnonzero((counts < low) | (counts > high))
    if len(bad) == 0:
        return _passed("repetitions", f"Every cell has between {low} and {high} repetitions.")
    return CheckResult(
        name="repetitions",
        passed=False,
        message=(
            f"{_plural(len(bad), 'cell')} {_have(len(bad))} a number of repetitions (distinct rep values) outside "
            f"{low}..{high}: cells {_list_values(cells[bad])}."
        ),
        count=len(bad),
        examples=[f"cell {cells[i]}: {_plural(int(counts[i]), 'repetition')}" for i in bad[:MAX_EXAMPLES]],
    )


def check_capture_length(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """Every capture has more than rows_per_capture rows."""
    minimum = settings.rows_per_capture + 1
    bad = np.flatnonzero(captures.length < minimum)
    if len(bad) == 0:
        return _passed("capture_length", f"Every capture has at least {minimum} rows.")
    return CheckResult(
        name="capture_length",
        passed=False,
        message=(
            f"{_plural(len(bad), 'capture')} {_have(len(bad))} fewer than {minimum} rows (packets): record them again."
        ),
        count=len(bad),
        examples=[
            f"cell {captures.cell_id[i]}, rep {captures.rep[i]}: {_plural(int(captures.length[i]), 'row')}"
            for i in bad[:MAX_EXAMPLES]
        ],
    )


def check_capture_count(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """There are enough captures for the test set while leaving one training capture per cell."""
    cells, _, counts = _captures_per_cell(captures)
    needed_total = settings.nb_traces_to_classify + settings.nb_classes
    few = np.flatnonzero(counts < 2)
    total = len(captures)
    if len(few) == 0 and total >= needed_total:
        return _passed("capture_count", f"{total} captures: enough for {settings.nb_traces_to_classify} test captures.")
    parts, examples = [], []
    if total < needed_total:
        parts.append(
            f"there are {total} captures, {needed_total} are needed "
            f"({settings.nb_traces_to_classify} to test plus one per cell to train on)"
        )
        examples.append(f"{total} captures in total, {needed_total} needed")
    if len(few):
        parts.append(f"{_plural(len(few), 'cell')} {_have(len(few))} a single capture: {_list_values(cells[few])}")
        examples += [f"cell {cells[i]}: 1 capture" for i in few]
    return CheckResult(
        name="capture_count",
        passed=False,
        message="Not enough captures to build a test set and keep a training capture per cell: "
        + "; ".join(parts)
        + ".",
        count=max(len(few), 1),
        examples=examples[:MAX_EXAMPLES],
    )


def check_defence(
    traces: DefenceTraces, settings: DefenceSettings, captures: Captures | None = None
) -> list[CheckResult]:
    """Checks on typed values: sizes, cells, repetitions, capture length and count.

    Give `captures` only with traces still in file order (group_captures may move rows in place).
    """
    sizes = check_sizes(traces)
    if captures is None:
        traces, captures = group_captures(traces)
    return [sizes, *check_captures(captures, settings)]


def check_captures(captures: Captures, settings: DefenceSettings) -> list[CheckResult]:
    """Checks on whole captures: cells, repetitions, capture length and count."""
    return [
        check_cells(captures, settings),
        check_repetitions(captures, settings),
        check_capture_length(captures, settings),
        check_capture_count(captures, settings),
    ]


# ---------------------------------------------------------------------------------------------- utility


def capture_metrics(traces: DefenceTraces, captures: Captures) -> dict[str, np.ndarray]:
    """Bytes received, bytes sent and duration of every capture (canonical order)."""
    if len(captures) == 0:
        empty = np.zeros(0)
        return {"bytes_in": empty, "bytes_out": empty, "duration": empty}
    # reduceat needs increasing offsets: use the row layout, then reorder to canonical order.
    layout = np.argsort(captures.start)
    start = captures.start[layout]
    size = traces.direction_size
    sent = np.add.reduceat(np.maximum(size, 0), start)
    total = np.add.reduceat(np.abs(size), start)  # one full-size temporary at a time
    inverse = np.empty_like(layout)
    inverse[layout] = np.arange(len(layout))
    sent = sent[inverse]
    received = total[inverse] - sent
    last = captures.start + captures.length - 1
    # Rows are in time order inside a capture, so last - first is max - min.
    duration = traces.timestamp[last] - traces.timestamp[captures.start]
    return {"bytes_in": received.astype(np.float64), "bytes_out": sent.astype(np.float64), "duration": duration}


def compute_utility(traces: DefenceTraces, captures: Captures | None = None) -> tuple[dict, float]:
    """Max, mean and median of each metric, and the utility score 64 / log10(|product of medians|)."""
    if captures is None:
        traces, captures = group_captures(traces)
    metrics = capture_metrics(traces, captures)
    if len(captures) == 0:
        raise ValidationError(
            "The defence holds no capture.", [CheckResult("utility", False, "No capture to measure.")]
        )
    utility = {
        name: {
            "max": float(np.max(values)),
            "mean": float(np.mean(values)),
            "median": float(np.median(values)),
        }
        for name, values in metrics.items()
    }
    product = abs(utility["bytes_in"]["median"] * utility["bytes_out"]["median"] * utility["duration"]["median"])
    if not product > 1 or not math.isfinite(product):
        check = CheckResult(
            name="utility",
            passed=False,
            message=(
                "The utility score is undefined: the product of the median bytes received "
                f"({utility['bytes_in']['median']:g}), median bytes sent ({utility['bytes_out']['median']:g}) "
                f"and median duration ({utility['duration']['median']:g} s) must be greater than 1. "
                "Check that sizes are in bytes and timestamps in seconds."
            ),
            count=1,
        )
        raise ValidationError(check.message, [check])
    return utility, 64 / math.log10(product)


# ---------------------------------------------------------------------------------------------- split


def split_defence(captures: Captures, settings: DefenceSettings, seed: int) -> DefenceSplit:
    """Draw the test set: one capture per cell, then uniformly among the rest, keeping one train capture per cell.

    Only canonical capture order and `seed` matter, so the same file in any row order gives the same split.
    """
    rng = np.random.default_rng(seed)
    nb_captures = len(captures)
    _, first, counts = _captures_per_cell(captures)
    nb_cells = len(first)
    nb_test = settings.nb_traces_to_classify
    if np.any(counts < 2) or nb_captures - nb_cells < nb_test:
        raise ValueError("not enough captures to split; run check_capture_count first")
    test_first = first + rng.integers(0, counts)
    # Keep one training capture per cell: a random one among the cell's others.
    offset = rng.integers(0, counts - 1)
    train_keep = first + offset + (first + offset >= test_first)
    available = np.ones(nb_captures, dtype=bool)
    available[test_first] = False
    available[train_keep] = False
    rest = rng.choice(np.flatnonzero(available), size=nb_test - nb_cells, replace=False)
    test = rng.permutation(np.concatenate((test_first, rest)))
    test_capture_id = rng.choice(TEST_ID_RANGE[1] - TEST_ID_RANGE[0], size=nb_test, replace=False) + TEST_ID_RANGE[0]
    in_test = np.zeros(nb_captures, dtype=bool)
    in_test[test] = True
    train = np.flatnonzero(~in_test)
    train_rep = rng.choice(TRAIN_REP_RANGE[1] - TRAIN_REP_RANGE[0], size=len(train), replace=False) + TRAIN_REP_RANGE[0]
    # Write train captures by cell then new rep so the file order says nothing of the original reps.
    order = np.lexsort((train_rep, captures.cell_id[train]))
    return DefenceSplit(
        test=test,
        test_capture_id=test_capture_id.astype(np.int64),
        train=train[order],
        train_rep=train_rep[order].astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------- writing


def _rows_of(captures: Captures, chosen: np.ndarray) -> np.ndarray:
    """Row indexes of the chosen captures, capture after capture."""
    start, length = captures.start[chosen], captures.length[chosen]
    ends = np.cumsum(length)
    return np.arange(ends[-1] if len(ends) else 0, dtype=np.int64) + np.repeat(start - (ends - length), length)


def _batches(captures: Captures, chosen: np.ndarray) -> Iterator[slice]:
    """Slices of `chosen` holding about _WRITE_BATCH_ROWS rows each."""
    ends = np.cumsum(captures.length[chosen])
    begin = 0
    while begin < len(chosen):
        done = ends[begin - 1] if begin else 0
        end = int(np.searchsorted(ends, done + _WRITE_BATCH_ROWS, side="right"))
        end = max(end, begin + 1)
        yield slice(begin, end)
        begin = end


_ARROW_TYPES = {np.dtype(np.int64): pa.int64(), np.dtype(np.float64): pa.float64()}


def _arrow(values: np.ndarray) -> pa.Array:
    """Zero-copy Arrow view of a numpy column (pa.array would import pandas, ~0.4 s on first use)."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(_ARROW_TYPES[values.dtype], len(values), [None, pa.py_buffer(values)])


def _repeated(values: np.ndarray, lengths: np.ndarray) -> pa.DictionaryArray:
    """values[i] repeated lengths[i] times, as text formatted once per value instead of once per row."""
    texts = [str(value).encode() for value in values.tolist()]
    offsets = np.zeros(len(texts) + 1, dtype=np.int32)
    np.cumsum([len(text) for text in texts], out=offsets[1:])
    dictionary = pa.Array.from_buffers(
        pa.string(), len(texts), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(texts))]
    )
    indices = np.repeat(np.arange(len(texts), dtype=np.int32), lengths)
    return pa.DictionaryArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), len(indices), [None, pa.py_buffer(indices)]), dictionary
    )


def _csv_bytes(columns: dict[str, np.ndarray | pa.Array]) -> memoryview:
    """CSV text of the columns, formatted by Arrow into an Arrow buffer (no GIL held meanwhile).

    Only numbers are written, so nothing needs quoting (and Arrow would otherwise quote the text columns).
    """
    arrays = [values if isinstance(values, pa.Array) else _arrow(values) for values in columns.values()]
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(
        pa.Table.from_arrays(arrays, names=list(columns)),
        sink,
        pa_csv.WriteOptions(include_header=False, batch_size=1 << 16, quoting_style="none"),
    )
    return memoryview(sink.getvalue())


def _deflate(data) -> bytes:
    """Raw deflate of one chunk, ended on a byte boundary (sync flush) so chunks can be joined."""
    compressor = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _format_and_deflate(make_columns: Callable[[], dict]) -> tuple[memoryview, bytes]:
    text = _csv_bytes(make_columns())
    return text, _deflate(text)


def _dos_datetime() -> tuple[int, int]:
    now = time.localtime()
    return (
        (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2),
        ((max(now.tm_year, 1980) - 1980) << 9) | (now.tm_mon << 5) | now.tm_mday,
    )


def _write_zip(path: Path, member: str, header: list[str], batches: Iterator[Callable[[], dict]]) -> None:
    """Write a one-member deflated zip, formatting and compressing chunks on several threads.

    Each chunk is deflated on its own and ends on a byte boundary, so the chunks joined form one valid
    deflate stream (as pigz does). zipfile cannot take precompressed data, hence the small container
    below: local header (patched at the end), data, central directory, end record; no zip64, which the
    input cap keeps out of reach.
    """
    name = member.encode()
    dos_time, dos_date = _dos_datetime()
    crc = size = compressed_size = 0

    def local_header() -> bytes:
        fields = (0x04034B50, 20, 0, zipfile.ZIP_DEFLATED, dos_time, dos_date, crc, compressed_size, size)
        return struct.pack("<IHHHHHIIIHH", *fields, len(name), 0) + name

    with open(path, "wb") as out, ThreadPoolExecutor(max_workers=_WRITE_THREADS) as pool:
        out.write(local_header())
        head = (",".join(header) + "\n").encode()
        pending = deque([pool.submit(lambda: (head, _deflate(head)))])

        def drain() -> None:
            nonlocal crc, size, compressed_size
            text, data = pending.popleft().result()
            crc = zlib.crc32(text, crc)
            size += len(text)
            compressed_size += len(data)
            out.write(data)

        for make_columns in batches:
            pending.append(pool.submit(_format_and_deflate, make_columns))
            if len(pending) > _WRITE_THREADS + 1:  # bound the chunks held in memory
                drain()
        while pending:
            drain()
        final_block = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, -15).flush()
        out.write(final_block)
        compressed_size += len(final_block)
        if max(size, compressed_size, out.tell()) >= 0xFFFFFFFF:
            raise ValueError(f"{path.name} would exceed 4 GiB, beyond a zip without zip64")
        directory_offset = out.tell()
        directory = (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                (3 << 8) | 20,  # made by Unix, zip 2.0
                20,
                0,
                zipfile.ZIP_DEFLATED,
                dos_time,
                dos_date,
                crc,
                compressed_size,
                size,
                len(name),
                0,
                0,
                0,
                0,
                0o100644 << 16,
                0,
            )
            + name
        )
        out.write(directory)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), directory_offset, 0))
        out.seek(0)
        out.write(local_header())


def write_defence_sets(
    traces: DefenceTraces,
    captures: Captures,
    split: DefenceSplit,
    out_dir: Path,
    team_id: int,
) -> tuple[Path, Path, Path]:
    """Write team_{id}_train.csv.zip, team_{id}_test.csv.zip and team_{id}_verification.csv.zip.

    Files are written under temporary names in out_dir and renamed at the end; on failure none is left.
    """
    out_dir = Path(out_dir)
    final = [out_dir / f"team_{team_id}_{kind}.csv.zip" for kind in ("train", "test", "verification")]
    temporary = [path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in final]

    def train_batches() -> Iterator[Callable[[], dict]]:
        for part in _batches(captures, split.train):

            def make(part=part) -> dict:
                chosen = split.train[part]
                rows = _rows_of(captures, chosen)
                length = captures.length[chosen]
                return {
                    "cell_id": _repeated(captures.cell_id[chosen], length),
                    "rep": _repeated(split.train_rep[part], length),
                    "direction_size": traces.direction_size[rows],
                    "timestamp": traces.timestamp[rows],
                }

            yield make

    def test_batches() -> Iterator[Callable[[], dict]]:
        for part in _batches(captures, split.test):

            def make(part=part) -> dict:
                chosen = split.test[part]
                rows = _rows_of(captures, chosen)
                return {
                    "capture_id": _repeated(split.test_capture_id[part], captures.length[chosen]),
                    "direction_size": traces.direction_size[rows],
                    "timestamp": traces.timestamp[rows],
                }

            yield make

    order = np.argsort(split.test_capture_id)
    verification = {
        "capture_id": split.test_capture_id[order],
        "cell_id": captures.cell_id[split.test][order],
    }
    try:
        _write_zip(temporary[0], final[0].name[:-4], ["cell_id", "rep", "direction_size", "timestamp"], train_batches())
        _write_zip(
            temporary[1],
            final[1].name[:-4],
            ["capture_id", "direction_size", "timestamp"],
            test_batches(),
        )
        _write_zip(temporary[2], final[2].name[:-4], ["capture_id", "cell_id"], iter([lambda: verification]))
        for source, target in zip(temporary, final, strict=True):
            os.replace(source, target)
    except BaseException:
        for path in temporary + final:
            path.unlink(missing_ok=True)
        raise
    return final[0], final[1], final[2]


# ---------------------------------------------------------------------------------------------- whole path


def evaluate_defence(
    zip_path: Path,
    out_dir: Path,
    *,
    team_id: int,
    settings: DefenceSettings,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> DefenceResult:
    """Read, check, measure, split and write a defence; raise ValidationError with every check on failure."""
    report = progress or (lambda stage: None)
    report("reading")
    traces, checks = read_defence(Path(zip_path), settings)
    report("checking")
    if traces is None:
        checks += [_not_run(name, "the file must be readable first (see above).") for name in CHECK_NAMES[2:]]
        raise ValidationError(failure_message(checks), checks)
    checks.append(check_sizes(traces))  # before grouping, which may move rows: line numbers stay right
    traces, captures = group_captures(traces)
    checks += check_captures(captures, settings)
    if not all(check.passed for check in checks):
        raise ValidationError(failure_message(checks), checks)
    report("measuring")
    try:
        utility, score = compute_utility(traces, captures)
    except ValidationError as exc:
        raise ValidationError(exc.message, checks + exc.checks) from None
    checks.append(_passed("utility", f"Utility score {score:.3f}."))
    report("splitting")
    split = split_defence(captures, settings, seed)
    report("writing")
    train_path, test_path, verification_path = write_defence_sets(traces, captures, split, Path(out_dir), team_id)
    return DefenceResult(
        checks=checks,
        utility=utility,
        utility_score=score,
        nb_rows=len(traces),
        nb_captures=len(captures),
        seed=seed,
        train_path=train_path,
        test_path=test_path,
        verification_path=verification_path,
        nb_train_captures=len(split.train),
        nb_test_captures=len(split.test),
    )


__all__ = [
    "Captures",
    "DefenceResult",
    "DefenceSettings",
    "DefenceSplit",
    "DefenceTraces",
    "check_capture_count",
    "check_capture_length",
    "check_captures",
    "check_cells",
    "check_columns",
    "check_defence",
    "check_repetitions",
    "check_sizes",
    "compute_utility",
    "capture_metrics",
    "evaluate_defence",
    "failure_message",
    "group_captures",
    "read_defence",
    "split_defence",
    "write_defence_sets",
]
