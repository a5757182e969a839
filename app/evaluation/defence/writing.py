"""Writing of the train, test and verification sets as zips, formatted and compressed on several threads."""

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..zip_writer import write_zips
from .captures import Captures
from .split import DefenceSplit

_WRITE_BATCH_ROWS = 1 << 18
_WRITE_THREADS = 2
_MAX_DECIMALS = 9
_SMALL_RANGE = 1 << 16


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


def _texts(values: Iterable[int]) -> pa.Array:
    """The values formatted as an Arrow string array."""
    texts = [str(value).encode() for value in values]
    offsets = np.zeros(len(texts) + 1, dtype=np.int32)
    np.cumsum([len(text) for text in texts], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(texts), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(texts))])


def _indices(indices: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.int32(), len(indices), [None, pa.py_buffer(np.ascontiguousarray(indices))])


# Arrow's CSV writer copies a plain string column several times faster than it formats integers (or a dictionary
# column): columns with few distinct values are formatted once per value and copied row by row (Arrow's take).


def _repeated(values: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """values[i] repeated lengths[i] times, as text formatted once per value instead of once per row."""
    indices = np.repeat(np.arange(len(values), dtype=np.int32), lengths)
    return _texts(values.tolist()).take(_indices(indices))


@functools.lru_cache(maxsize=4)
def _range_texts(low: int, high: int) -> pa.Array:
    return _texts(range(low, high + 1))


def _integers(values: np.ndarray) -> pa.Array:
    """An integer column as text; values within a small range (packet sizes) are formatted once each."""
    if not len(values):
        return _arrow(values)
    low, high = int(values.min()), int(values.max())
    if high - low >= _SMALL_RANGE:
        return _arrow(values)
    return _range_texts(low, high).take(_indices((values - low).astype(np.int32)))


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


def decimal_scale(timestamps: np.ndarray) -> float | None:
    """10**d for the fewest decimals d (at most 9) that write every timestamp exactly; None when there are none.

    Uploads write times with a few decimals (SecretStroll's captures: microseconds). A rebased time t - t0,
    computed in binary floating point, carries noise in its last digits (0.16545900000000002); rounded back to
    the upload's decimals it is the exact decimal difference, printed as the student would write it (0.165459):
    about half the text, and a fifth of the compressed bytes, of the noisy form.
    """
    if not len(timestamps):
        return None
    sample = timestamps[:: max(1, len(timestamps) // 4096)]
    largest = float(np.max(np.abs(timestamps)))
    for decimals in range(_MAX_DECIMALS + 1):
        scale = 10.0**decimals
        if not largest * scale < 2.0**52:  # (also NaN) beyond exact integers in a double: keep the plain difference
            return None
        if np.array_equal(np.round(sample * scale) / scale, sample) and np.array_equal(
            np.round(timestamps * scale) / scale, timestamps
        ):
            return scale
    return None


def _rebased_times(
    timestamp: np.ndarray, captures: Captures, chosen: np.ndarray, rows: np.ndarray, scale: float | None
) -> np.ndarray:
    """Timestamps of the chosen captures' rows, each capture starting at 0, at the upload's decimals (scale).

    Absolute or session-relative times would tell captures apart by when they were taken, and so their cell.
    """
    first = timestamp[captures.start[chosen]]
    times = timestamp[rows]
    times -= np.repeat(first, captures.length[chosen])
    if scale is not None:  # both terms have at most these decimals: so has their exact difference
        np.multiply(times, scale, out=times)
        np.round(times, out=times)
        np.divide(times, scale, out=times)
    return times


def _csv_chunks(columns: Callable[[slice], dict], captures: Captures, chosen: np.ndarray, header: list[str]):
    """The header line, then CSV text of about _WRITE_BATCH_ROWS rows per chunk, made when called."""
    head = (",".join(header) + "\n").encode()
    yield lambda: head
    for part in _batches(captures, chosen):
        yield lambda part=part: _csv_bytes(columns(part))


def write_defence_sets(
    direction_size: np.ndarray,
    timestamp: np.ndarray,
    captures: Captures,
    split: DefenceSplit,
    out_dir: Path,
    team_id: int,
) -> tuple[Path, Path, Path]:
    """Write team_{id}_train.csv.zip, team_{id}_test.csv.zip and team_{id}_verification.csv.zip from the upload's
    packet columns (direction_size, timestamp: rows grouped as `captures` says).

    Layout (part of the format students' scripts rely on): train rows by cell_id, then rep, then time; test
    rows grouped by capture in ascending capture_id, time order inside a capture; verification rows by
    capture_id, with `public` (1 or 0: in the public subset or not) when the split drew one. Every capture's
    timestamps start at 0. Files are written under temporary names in out_dir and
    renamed at the end; on failure none is left.
    """
    out_dir = Path(out_dir)
    final = [out_dir / f"team_{team_id}_{kind}.csv.zip" for kind in ("train", "test", "verification")]
    temporary = [path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in final]
    scale = decimal_scale(timestamp)

    def train_columns(part: slice) -> dict:
        chosen = split.train[part]
        rows = _rows_of(captures, chosen)
        length = captures.length[chosen]
        return {
            "cell_id": _repeated(captures.cell_id[chosen], length),
            "rep": _repeated(split.train_rep[part], length),
            "direction_size": _integers(direction_size[rows]),
            "timestamp": _rebased_times(timestamp, captures, chosen, rows, scale),
        }

    def test_columns(part: slice) -> dict:
        chosen = split.test[part]
        rows = _rows_of(captures, chosen)
        return {
            "capture_id": _repeated(split.test_capture_id[part], captures.length[chosen]),
            "direction_size": _integers(direction_size[rows]),
            "timestamp": _rebased_times(timestamp, captures, chosen, rows, scale),
        }

    order = np.argsort(split.test_capture_id)
    verification = {"capture_id": split.test_capture_id[order], "cell_id": captures.cell_id[split.test][order]}
    if split.test_public is not None:
        verification["public"] = split.test_public[order].astype(np.int64)
    sets = [
        (train_columns, split.train, ["cell_id", "rep", "direction_size", "timestamp"]),
        (test_columns, split.test, ["capture_id", "direction_size", "timestamp"]),
    ]
    head = (",".join(verification) + "\n").encode()
    files = [
        (path, target.name[:-4], _csv_chunks(columns, captures, chosen, header))
        for (columns, chosen, header), path, target in zip(sets, temporary, final, strict=False)
    ]
    files.append((temporary[2], final[2].name[:-4], [lambda: head, lambda: _csv_bytes(verification)]))
    try:
        write_zips(files, _WRITE_THREADS)
        for source, target in zip(temporary, final, strict=True):
            os.replace(source, target)
    except BaseException:
        for path in temporary + final:
            path.unlink(missing_ok=True)
        raise
    return final[0], final[1], final[2]
