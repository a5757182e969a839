"""Writing of the train, test and verification sets as zips, formatted and compressed on several threads."""

import os
import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from app.evaluation.defence.captures import Captures
from app.evaluation.defence.split import DefenceSplit
from app.evaluation.defence.traces import DefenceTraces

_WRITE_BATCH_ROWS = 1 << 18
_WRITE_THREADS = 2
_DEFLATE_LEVEL = 1


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
