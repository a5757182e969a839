"""Everything a defence evaluation sets up on its first call, done ahead on a few rows (a worker's start-up).

Arrow's thread pools, its CSV reader and writer, its `take` kernel and the deflate library are set up on first
use, per process (threads do not survive a fork): time the first upload after a worker's start would otherwise
wait for. No file is read or written.
"""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..zip_writer import _deflate
from .reading import _column_types
from .settings import FLOAT_COLUMNS, INTEGER_COLUMNS
from .writing import _csv_bytes, _integers, _repeated

_ROWS = 64


def warm_up() -> None:
    """Parse, format and deflate a few rows the way an evaluation does."""
    names = INTEGER_COLUMNS + FLOAT_COLUMNS
    lines = "".join(f"1,{i},{1500 - 2 * i},{i / 7:.6f}\n" for i in range(_ROWS))
    reader = pa_csv.open_csv(
        pa.BufferReader((",".join(names) + "\n" + lines).encode()),
        read_options=pa_csv.ReadOptions(use_threads=True),
        convert_options=pa_csv.ConvertOptions(column_types=_column_types()),
    )
    reader.read_all()
    sizes = 1500 - 2 * np.arange(_ROWS, dtype=np.int64)
    text = _csv_bytes(
        {
            "cell_id": _repeated(np.array([1, 2]), np.array([_ROWS // 2, _ROWS - _ROWS // 2])),
            "direction_size": _integers(sizes),
            "timestamp": np.arange(_ROWS, dtype=np.float64) / 7,
        }
    )
    _deflate(text)
