"""Reading of a defence upload: a capped typed parse, and a diagnostics parse when that fails."""

import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ..archive import inspect_upload, open_capped, read_header
from ..checks import MAX_EXAMPLES, MAX_EXTRA_HEADER_FIELDS, check_columns, not_run, plural
from ..errors import CheckResult, ValidationError
from .checks import check_timestamps
from .settings import FLOAT_COLUMNS, INTEGER_COLUMNS, DefenceSettings
from .traces import DefenceTraces

_READ_BLOCK_BYTES = 1 << 20


def _column_types() -> dict[str, pa.DataType]:
    types = {name: pa.int64() for name in INTEGER_COLUMNS}
    types.update({name: pa.float64() for name in FLOAT_COLUMNS})
    return types


def _values(column: pa.Array, dtype: np.dtype) -> np.ndarray:
    """Zero-copy view of a null-free primitive Arrow array (Array.to_numpy would import pandas)."""
    assert column.null_count == 0
    return np.frombuffer(column.buffers()[1], dtype=dtype, count=len(column), offset=column.offset * dtype.itemsize)


def _too_many_rows(max_rows: int) -> ValidationError:
    check = CheckResult(
        name="types",
        passed=False,
        message=(
            f"The file has more than {max_rows:,} rows (packets), the most a defence may have: "
            "upload fewer captures or shorter ones."
        ),
        count=1,
    )
    return ValidationError(check.message, [check])


def _read_typed(zip_path: Path, member: str, max_bytes: int, max_rows: int) -> DefenceTraces:
    """Fast path: stream typed record batches straight into numpy arrays.

    Arrays are reserved for the most rows the member can hold (8 bytes per row at least) and never more than
    max_rows + 1; pages never written are never resident, so memory follows the real row count without a
    concatenation copy. The count is checked after every block (about 1 MiB of text), so a file past
    max_rows is refused holding no more than max_rows rows.
    """
    with zipfile.ZipFile(zip_path) as archive:
        declared = archive.getinfo(member).file_size
    capacity = min(min(declared, max_bytes) // 8, max_rows) + 1
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
            if end > max_rows:
                raise _too_many_rows(max_rows)
            if end > len(arrays[0]):  # only if the archive under-declared its size
                size = min(2 * end, max_rows + 1)
                arrays = [np.concatenate((array[:nb_rows], np.empty(size - nb_rows, array.dtype))) for array in arrays]
            for array, position in zip(arrays, positions, strict=True):
                array[nb_rows:end] = _values(batch.column(position), array.dtype)
            nb_rows = end
    pa.default_memory_pool().release_unused()
    return DefenceTraces(*(array[:nb_rows] for array in arrays))


_INTEGER_PATTERN = r"^[ \t]*-?[0-9]{1,18}[ \t]*$"
_FLOAT_PATTERN = r"(?i)^[ \t]*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity|nan)[ \t]*$"


def _read_diagnostics(
    zip_path: Path, member: str, max_bytes: int, max_rows: int
) -> tuple[DefenceTraces | None, CheckResult]:
    """Slow path, run only when the typed parse failed: find every bad row and say why."""
    invalid_rows: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        invalid_rows.append(
            (row.number, f"line {row.number}: has {row.actual_columns} fields, expected {row.expected_columns}")
        )
        return "skip"

    names = INTEGER_COLUMNS + FLOAT_COLUMNS
    with open_capped(zip_path, member, max_bytes) as stream:
        reader = pa_csv.open_csv(
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
        batches, nb_read = [], 0
        for batch in reader:
            nb_read += batch.num_rows
            if nb_read > max_rows:
                raise _too_many_rows(max_rows)
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=reader.schema)
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
        timestamp_check = check_timestamps(traces)
        if not invalid_rows:
            return traces, timestamp_check
        nb_bad += timestamp_check.count
        problems += [(int(e.split(":")[0].split()[1]), e) for e in timestamp_check.examples]
    problems.sort()
    return traces if not invalid_rows else None, CheckResult(
        name="types",
        passed=False,
        message=(
            f"{plural(nb_bad, 'row')} cannot be read: every row needs 4 fields; cell_id, rep and "
            "direction_size must be whole numbers and timestamp a finite number >= 0, with no empty "
            "cells (line numbers count the header as line 1)."
        ),
        count=nb_bad,
        examples=[text for _, text in problems[:MAX_EXAMPLES]],
    )


def read_defence(zip_path: Path, settings: DefenceSettings) -> tuple[DefenceTraces | None, list[CheckResult]]:
    """Read an upload; return its traces (None when unusable) and the `columns` and `types` checks.

    Archive problems (not a zip, several files, too large, too many rows...) raise ValidationError directly.
    """
    max_bytes = settings.max_uncompressed_bytes
    member = inspect_upload(zip_path, max_member_bytes=max_bytes)
    header = read_header(zip_path, member, max_bytes, len(settings.columns) + MAX_EXTRA_HEADER_FIELDS)
    columns_check = check_columns(header, settings.columns)
    if not columns_check.passed:
        return None, [columns_check, not_run("types", "the columns must be right first.")]
    try:
        traces = _read_typed(zip_path, member, max_bytes, settings.max_rows)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:
            traces, types_check = _read_diagnostics(zip_path, member, max_bytes, settings.max_rows)
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
    return traces, [columns_check, check_timestamps(traces)]
