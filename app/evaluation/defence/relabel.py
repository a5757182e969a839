"""One attacker's copy of a defence's test pool: the same captures under new ids, in a new order, with a new
public subset; the labels stay where the attacker cannot see them (the verification set)."""

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..arrays import as_numpy
from ..zip_writer import write_zip
from .split import TEST_ID_RANGE, draw_public
from .writing import _csv_bytes

TEST_COLUMNS = ("capture_id", "direction_size", "timestamp")


@dataclass
class AttackerSets:
    """The test and verification sets written for one attacker of a defence."""

    test_path: Path
    verification_path: Path
    nb_test_captures: int


def _read_set(path: Path, column_types: dict[str, pa.DataType]) -> pa.Table:
    """The columns of the one CSV a generated set zip holds (packet columns read as text: copied, not re-printed)."""
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
        if len(members) != 1:
            raise ValueError(f"{Path(path).name} holds {len(members)} CSV files, not one")
        data = archive.read(members[0])
    options = pa_csv.ConvertOptions(include_columns=list(column_types), column_types=column_types)
    return pa_csv.read_csv(io.BytesIO(data), convert_options=options)


def relabel_test_pool(
    test_zip: Path,
    verification_zip: Path,
    out_dir: Path,
    *,
    team_id: int,
    seed: int,
    public_fraction: float,
) -> AttackerSets:
    """Write one attacker's test and verification sets from a defence's test pool (its canonical sets).

    Args:
        test_zip: the pool's test set (`capture_id,direction_size,timestamp`, rows grouped by capture, time order
            inside a capture), as written when the defence was accepted.
        verification_zip: the pool's labels (`capture_id,cell_id[,public]`).
        out_dir: where team_{id}_test.csv.zip and team_{id}_verification.csv.zip are written.
        team_id: the defender's team id (names the files).
        seed: draws the new ids, the new order and the public subset; the same seed writes the same files.
        public_fraction: share of the pool in the new public subset (stratified by cell, see draw_public).

    Returns:
        The paths written. The test set keeps every packet row byte for byte; only the ids change, and captures
        are listed in ascending new id (random ids from TEST_ID_RANGE, so the order carries no label and two
        attackers' ids barely overlap). The verification set lists, by new id: `capture_id`, `cell_id`,
        `public` and `pool_capture_id` (the capture's id in the pool, which maps scores back to it).

    Raises:
        ValueError: the two files do not describe the same captures (a platform fault, not a student's).
    """
    test = _read_set(test_zip, {"capture_id": pa.int64(), "direction_size": pa.string(), "timestamp": pa.string()})
    labels = _read_set(verification_zip, {"capture_id": pa.int64(), "cell_id": pa.int64()})
    pool, cells = as_numpy(labels.column("capture_id")), as_numpy(labels.column("cell_id"))
    by_id = np.argsort(pool, kind="stable")
    pool, cells = pool[by_id], cells[by_id]
    row_ids = as_numpy(test.column("capture_id"))
    slot = np.searchsorted(pool, row_ids)
    if len(pool) == 0 or np.any(slot >= len(pool)) or np.any(pool[np.minimum(slot, len(pool) - 1)] != row_ids):
        raise ValueError("the test set holds captures its verification set does not label")
    if len(np.unique(slot)) != len(pool):
        raise ValueError("the verification set labels captures the test set does not hold")

    rng = np.random.default_rng(seed)
    new_ids = rng.choice(TEST_ID_RANGE[1] - TEST_ID_RANGE[0], size=len(pool), replace=False) + TEST_ID_RANGE[0]
    public = draw_public(cells, public_fraction, rng)
    # A stable sort keeps each capture's rows in the order they were written in: time order.
    order = np.argsort(new_ids[slot], kind="stable")
    test_columns = {
        "capture_id": new_ids[slot][order].astype(np.int64),
        "direction_size": test.column("direction_size").take(pa.array(order)),
        "timestamp": test.column("timestamp").take(pa.array(order)),
    }
    listed = np.argsort(new_ids)
    verification_columns = {
        "capture_id": new_ids[listed].astype(np.int64),
        "cell_id": cells[listed],
        "public": public[listed].astype(np.int64),
        "pool_capture_id": pool[listed],
    }
    out_dir = Path(out_dir)
    paths = []
    for kind, columns in (("test", test_columns), ("verification", verification_columns)):
        path = out_dir / f"team_{team_id}_{kind}.csv.zip"
        head = (",".join(columns) + "\n").encode()
        body = _csv_bytes({name: _chunked(values) for name, values in columns.items()})
        write_zip(path, path.name[:-4], [lambda head=head: head, lambda body=body: body])
        paths.append(path)
    return AttackerSets(paths[0], paths[1], len(pool))


def _chunked(values) -> np.ndarray | pa.Array:
    """A column _csv_bytes takes: a numpy array, or one Arrow array (take on a table column gives chunks)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return np.ascontiguousarray(values)
