"""The platform's baseline attack: k-FP-style and CUMUL features, extra trees, scored like a student's attack.

It gives every accepted defence a privacy estimate before any attacker strikes. It is a *lower bound* on what
an attacker can reach: real attackers may engineer better features or classifiers.

This module loads the sets and fits and scores; the features (k-FP style and CUMUL) are in features.py.
Classifier: scikit-learn's extra trees (seeded, at most two jobs), probabilities scored by the same function as
students' attacks (app/evaluation/attack.py).
"""

from __future__ import annotations

import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .archive import open_capped, single_csv
from .attack import AttackScore, score_probabilities
from .confidence import ScoreIntervals, bootstrap_intervals
from .errors import ValidationError
from .features import CaptureRows, extract_features

if TYPE_CHECKING:  # scikit-learn and pandas are imported where used: every process of the platform imports this
    import pandas as pd  # module, and only the baseline worker needs them (together about 120 MB and 1.5 s)

NB_TREES = 200
NB_JOBS = 2
TREES_PER_BATCH = 25

TRAIN_COLUMNS = ("cell_id", "rep", "direction_size", "timestamp")
_READ_BLOCK_BYTES = 1 << 22
TEST_COLUMNS = ("capture_id", "direction_size", "timestamp")
VERIFICATION_COLUMNS = ("capture_id", "cell_id")


@dataclass
class BaselineResult:
    """Scores of the baseline attack on one defence, with what it took to get them."""

    score: AttackScore
    nb_train_captures: int
    nb_features: int
    seconds: float
    proba: np.ndarray = field(repr=False)  # test captures (ascending capture id) × classes
    true_cells: np.ndarray = field(repr=False)
    intervals: ScoreIntervals | None = None

    def to_dict(self) -> dict:
        """Return the scores and sizes as a JSON-serialisable dict (without the probabilities)."""
        return {
            "accuracy": self.score.accuracy,
            "top5_accuracy": self.score.top5_accuracy,
            "roc_auc": self.score.roc_auc,
            "nb_test_captures": self.score.nb_captures,
            "nb_train_captures": self.nb_train_captures,
            "nb_features": self.nb_features,
            "seconds": self.seconds,
            "intervals": self.intervals.to_dict() if self.intervals is not None else None,
        }


# --- reading the sets ---------------------------------------------------------------------------------------


def _is_frame(source: object) -> bool:
    """Whether source is a pandas DataFrame (it cannot be one while pandas was never imported)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(source, pandas.DataFrame)


def _read_columns(source: pd.DataFrame | str | Path, columns: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """Columns of a frame, or of the one CSV inside a zip (or a plain CSV file), as numpy arrays."""
    if _is_frame(source):
        missing = [name for name in columns if name not in source.columns]
        if missing:
            raise ValueError(f"the {what} set lacks the columns {missing}")
        return {name: source[name].to_numpy() for name in columns}
    path = Path(source)
    types = {name: pa.float64() if name == "timestamp" else pa.int64() for name in columns}
    options = pacsv.ConvertOptions(include_columns=list(columns), column_types=types)
    try:
        if zipfile.is_zipfile(path):
            arrays = _stream_columns(path, columns, options, what)
        else:
            table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(path.read_bytes())), convert_options=options)
            if any(table.column(name).null_count for name in columns):
                raise ValueError("empty cells")
            arrays = {name: table.column(name).to_numpy() for name in columns}
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, pa.ArrowException, ValidationError) as exc:
        raise ValueError(f"the {what} set {path.name} is unreadable: {exc}") from exc
    pa.default_memory_pool().release_unused()
    return arrays


def _stream_columns(
    path: Path, columns: tuple[str, ...], options: pacsv.ConvertOptions, what: str
) -> dict[str, np.ndarray]:
    """The columns of the one CSV in a zip, inflated and parsed block by block into arrays reserved for the most
    rows the text can hold (every row has a character and a separator per column at least; pages never written
    are never resident): neither the text nor a second copy of the columns is held (300 MB at 6 M rows)."""
    with zipfile.ZipFile(path) as archive:
        info = single_csv(archive.infolist(), f"write the {what} set again.")
    capacity = info.file_size // (2 * len(columns)) + 1
    arrays = {name: np.empty(capacity, dtype=np.float64 if name == "timestamp" else np.int64) for name in columns}
    nb_rows = 0
    read_options = pacsv.ReadOptions(use_threads=True, block_size=_READ_BLOCK_BYTES)
    with open_capped(path, info.filename, info.file_size) as stream:
        for batch in pacsv.open_csv(stream, read_options=read_options, convert_options=options):
            end = nb_rows + batch.num_rows
            if end > capacity:  # cannot happen for the sets the platform writes; grown all the same
                capacity = 2 * end
                arrays = {
                    name: np.concatenate((a[:nb_rows], np.empty(capacity - nb_rows, a.dtype)))
                    for name, a in arrays.items()
                }
            for name in columns:
                column = batch.column(name)
                if column.null_count:
                    raise ValueError("empty cells")
                arrays[name][nb_rows:end] = column.to_numpy()
            nb_rows = end
    return {name: values[:nb_rows] for name, values in arrays.items()}


def _in_order(keys: tuple[np.ndarray, ...], times: np.ndarray) -> bool:
    """Whether rows come by keys (ascending, the first most significant), then in time order."""
    ordered = ~(times[1:] < times[:-1])
    for key in reversed(keys):
        ordered &= key[1:] == key[:-1]
        ordered |= key[1:] > key[:-1]
    return bool(ordered.all())


def _group(
    keys: tuple[np.ndarray, ...], size: np.ndarray, times: np.ndarray
) -> tuple[tuple[np.ndarray, ...], CaptureRows]:
    """Group rows by capture keys (ascending, the first most significant), time order within; return the keys of
    each capture and the rows. Sorted sets cost a few boolean arrays; only others are reordered."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        raise ValueError("the set has no packets")
    if not _in_order(keys, times):
        order = np.lexsort((times, *reversed(keys)))
        keys = tuple(key[order] for key in keys)
        size, times = size[order], times[order]
    new = np.zeros(len(times) - 1, dtype=bool)
    for key in keys:
        new |= key[1:] != key[:-1]
    first = np.concatenate(([0], np.flatnonzero(new) + 1))
    length = np.diff(np.append(first, len(times)))
    return tuple(key[first] for key in keys), CaptureRows(size, times, length)


def load_train(source: pd.DataFrame | str | Path) -> tuple[CaptureRows, np.ndarray]:
    """Captures of a train set (columns cell_id, rep, direction_size, timestamp) and the cell of each."""
    data = _read_columns(source, TRAIN_COLUMNS, "train")
    (cells, _), rows = _group(
        (data["cell_id"].astype(np.int64, copy=False), data["rep"].astype(np.int64, copy=False)),
        data["direction_size"].astype(np.int64, copy=False),
        data["timestamp"],
    )
    return rows, cells


def load_test(source: pd.DataFrame | str | Path) -> tuple[np.ndarray, CaptureRows]:
    """Capture ids (ascending) and captures of a test set (columns capture_id, direction_size, timestamp)."""
    data = _read_columns(source, TEST_COLUMNS, "test")
    (ids,), rows = _group(
        (data["capture_id"].astype(np.int64, copy=False),),
        data["direction_size"].astype(np.int64, copy=False),
        data["timestamp"],
    )
    return ids, rows


def load_labels(source: pd.DataFrame | str | Path | dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Capture ids (ascending) and true cells of a verification set (columns capture_id, cell_id) or mapping."""
    if isinstance(source, dict):
        data = {
            "capture_id": np.fromiter(source.keys(), dtype=np.int64, count=len(source)),
            "cell_id": np.fromiter(source.values(), dtype=np.int64, count=len(source)),
        }
    else:
        data = _read_columns(source, VERIFICATION_COLUMNS, "verification")
    ids, cells = data["capture_id"].astype(np.int64, copy=False), data["cell_id"].astype(np.int64, copy=False)
    order = np.argsort(ids, kind="stable")
    return ids[order], cells[order]


# --- the attack ---------------------------------------------------------------------------------------------


def _fit_predict(
    train_features: np.ndarray,
    train_cells: np.ndarray,
    test_features: np.ndarray,
    nb_classes: int,
    seed: int,
    nb_trees: int,
) -> np.ndarray:
    """Class probabilities (test captures × nb_classes) of an extra-trees forest of nb_trees trees.

    The forest is grown in batches of TREES_PER_BATCH whose probabilities are averaged, which is what a single
    forest does, but only one batch is held at a time: a fully grown tree stores a probability per class in
    every node (about 4 MB for 3,300 captures of 100 classes), so 300 trees at once would need over 1 GB.
    """
    from sklearn.ensemble import ExtraTreesClassifier

    proba = np.zeros((len(test_features), nb_classes))
    seeds = np.random.SeedSequence(seed).generate_state(-(-nb_trees // TREES_PER_BATCH))
    for batch, batch_seed in enumerate(seeds):
        size = min(TREES_PER_BATCH, nb_trees - batch * TREES_PER_BATCH)
        classifier = ExtraTreesClassifier(
            n_estimators=size, max_features="sqrt", n_jobs=NB_JOBS, random_state=int(batch_seed)
        )
        classifier.fit(train_features, train_cells)
        # Cells never seen in training keep probability 0.
        proba[:, classifier.classes_ - 1] += classifier.predict_proba(test_features) * size
        del classifier
    return proba / nb_trees


def run_baseline(
    train: pd.DataFrame | str | Path,
    test: pd.DataFrame | str | Path,
    verification_labels: pd.DataFrame | str | Path | dict[int, int],
    nb_classes: int,
    seed: int,
    *,
    nb_trees: int = NB_TREES,
    team_id: int = 0,
    with_intervals: bool = True,
) -> BaselineResult:
    """Train the baseline attack on a defence's train set and score it on its test set.

    Args:
        train: the train set (a frame, or the path of team_{id}_train.csv.zip): cell_id, rep,
            direction_size, timestamp. Rows of a capture may come in any order; they are grouped by
            (cell_id, rep) and sorted by time.
        test: the test set (frame or path of team_{id}_test.csv.zip): capture_id, direction_size, timestamp.
        verification_labels: the hidden labels (frame, path of team_{id}_verification.csv.zip, or a mapping
            capture id → cell): capture_id, cell_id.
        nb_classes: number of classes (cells 1..nb_classes).
        seed: seed of the classifier; the same inputs and seed give the same result.
        nb_trees: trees of the extra-trees classifier.
        team_id: recorded in the returned AttackScore (the defender's team).
        with_intervals: also compute 95 % bootstrap intervals of the scores (confidence.bootstrap_intervals,
            seeded with `seed`; about 0.1 s).

    Returns:
        A BaselineResult whose `score` comes from the students' scorer (accuracy, top-5 accuracy, macro
        one-vs-rest ROC-AUC), with the probabilities (test captures by ascending capture id × classes) and,
        unless with_intervals is False, the scores' bootstrap intervals.

    Raises:
        ValueError: a set is unreadable or empty, cells fall outside 1..nb_classes, or the test captures and
            the verification labels do not name the same captures (platform faults, not the student's).
    """
    started = time.perf_counter()
    train_rows, train_cells = load_train(train)
    test_ids, test_rows = load_test(test)
    label_ids, true_cells = load_labels(verification_labels)
    if len(label_ids) != len(test_ids) or not np.array_equal(label_ids, test_ids):
        raise ValueError(
            f"the test set has {len(test_ids)} captures and the verification set {len(label_ids)} labels, "
            "not for the same capture ids"
        )
    for name, cells in (("train", train_cells), ("verification", true_cells)):
        if cells.min() < 1 or cells.max() > nb_classes:
            raise ValueError(f"the {name} set has cells outside 1..{nb_classes}")

    nb_train_captures = len(train_rows)
    # The packets are not needed once their features exist (about 100 MB at 6 M rows): the trees use the memory.
    train_features = extract_features(train_rows)
    del train_rows
    test_features = extract_features(test_rows)
    del test_rows
    proba = _fit_predict(train_features, train_cells, test_features, nb_classes, seed, nb_trees)
    score = score_probabilities(team_id, proba, true_cells)
    intervals = bootstrap_intervals(proba, true_cells, seed=seed) if with_intervals else None
    return BaselineResult(
        score=score,
        nb_train_captures=nb_train_captures,
        nb_features=train_features.shape[1],
        seconds=time.perf_counter() - started,
        proba=proba,
        true_cells=true_cells,
        intervals=intervals,
    )


__all__ = [
    "BaselineResult",
    "load_labels",
    "load_test",
    "load_train",
    "run_baseline",
]
