"""Arrow columns as numpy arrays without pyarrow's to_numpy, which imports pandas (about 0.3 s when `srs validate`
starts); the worker has pandas loaded anyway, so both get the same arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _dtype(kind: pa.DataType) -> np.dtype | None:
    if pa.types.is_signed_integer(kind):
        return np.dtype(f"<i{kind.bit_width // 8}")
    if pa.types.is_unsigned_integer(kind):
        return np.dtype(f"<u{kind.bit_width // 8}")
    if pa.types.is_floating(kind):
        return np.dtype(f"<f{kind.bit_width // 8}")
    return None


def as_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A copy of a numeric column without nulls, in its own dtype (other columns: pyarrow's to_numpy)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    dtype = _dtype(column.type)
    if dtype is None or column.null_count:
        return np.array(column.to_numpy(zero_copy_only=False))
    parts = [
        np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
        for chunk in chunks
        if len(chunk)
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
