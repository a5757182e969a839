"""The platform's baseline attack: k-FP-style and CUMUL features, extra trees, scored like a student's attack.

It gives every accepted defence a privacy estimate before any attacker strikes. It is a *lower bound* on what
an attacker can reach: real attackers may engineer better features or classifiers.

Features (one row per capture, computed for all captures at once with numpy segment operations):
- k-FP style (Hayes and Danezis, USENIX Security 2016): packet and byte counts per direction, packet sizes per
  direction (statistics and a coarse histogram), timing statistics (transmission-time quartiles, inter-arrival
  times overall and per direction, packets per second), bursts (runs of packets in one direction), ordering
  (positions of incoming and outgoing packets, packets of each direction among the first and last 30, outgoing
  share in 20 equal slices of the trace) and the signed sizes of the first 20 packets;
- CUMUL (Panchenko et al., NDSS 2016): packet and byte counts per direction plus the cumulative signed size
  curve sampled at 100 points evenly spaced along the cumulative absolute size.
Classifier: scikit-learn's extra trees (seeded, at most two jobs), probabilities scored by the same function as
students' attacks (app/evaluation/attack.py).
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sklearn.ensemble import ExtraTreesClassifier

from .archive import read_single_csv
from .attack import AttackScore, score_probabilities
from .confidence import ScoreIntervals, bootstrap_intervals
from .errors import ValidationError

NB_TREES = 200
NB_JOBS = 2
TREES_PER_BATCH = 25
CUMUL_POINTS = 100
FIRST_PACKETS = 20
EDGE_PACKETS = 30
SLICES = 20
SIZE_BINS = (0, 100, 600, 1100, 1400)
QUARTILES = (0.25, 0.5, 0.75)

TRAIN_COLUMNS = ("cell_id", "rep", "direction_size", "timestamp")
TEST_COLUMNS = ("capture_id", "direction_size", "timestamp")
VERIFICATION_COLUMNS = ("capture_id", "cell_id")


@dataclass
class CaptureRows:
    """Packets of several captures, each capture's rows contiguous and in time order."""

    direction_size: np.ndarray  # signed: + client to server (outgoing), - server to client (incoming)
    timestamp: np.ndarray
    length: np.ndarray  # number of rows of each capture, in capture order

    def __len__(self) -> int:
        return len(self.length)


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


# --- segment helpers: every capture is a contiguous segment of rows -------------------------------------------


def _starts(length: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64)


def _masked_stats(values: np.ndarray, groups: np.ndarray, nb: int) -> np.ndarray:
    """Count, mean, std, min, max of values per group (groups need not be contiguous); 0 for empty groups."""
    count = np.bincount(groups, minlength=nb).astype(np.float64)
    total = np.bincount(groups, weights=values, minlength=nb)
    squares = np.bincount(groups, weights=values * values, minlength=nb)
    safe = np.maximum(count, 1)
    mean = total / safe
    std = np.sqrt(np.maximum(squares / safe - mean * mean, 0.0))
    low = np.full(nb, np.inf)
    high = np.full(nb, -np.inf)
    np.minimum.at(low, groups, values)
    np.maximum.at(high, groups, values)
    empty = count == 0
    low[empty] = 0.0
    high[empty] = 0.0
    return np.column_stack((count, mean, std, low, high))


def _sorted_by_group(values: np.ndarray, groups: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Values sorted by group, then by value; and the count of each group.

    One float sort instead of a lexsort (five times faster): values are scaled into [0, 1] and offset by twice
    their group, which keeps groups apart; scaling back costs about 1e-12 of the value range in precision.
    """
    count = np.bincount(groups, minlength=nb)
    if len(values) == 0:
        return values.astype(np.float64), count
    low, span = float(values.min()), float(values.max() - values.min()) or 1.0
    key = (values - low) / span + 2.0 * groups
    key.sort()
    key -= 2.0 * np.repeat(np.arange(nb, dtype=np.float64), count)
    key *= span
    key += low
    return key, count


def _quantiles(values: np.ndarray, groups: np.ndarray, nb: int, qs: tuple[float, ...]) -> np.ndarray:
    """Linear-interpolated quantiles of values per group, one column per q; 0 for empty groups."""
    ordered, count = _sorted_by_group(np.asarray(values, dtype=np.float64), groups, nb)
    if len(ordered) == 0:
        return np.zeros((nb, len(qs)))
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    last = np.maximum(count - 1, 0)
    columns = []
    for q in qs:
        position = q * last
        below = np.floor(position).astype(np.int64)
        fraction = position - below
        low_index = np.minimum(start + below, len(ordered) - 1)
        high_index = np.minimum(start + np.minimum(below + 1, last), len(ordered) - 1)
        value = ordered[low_index] * (1 - fraction) + ordered[high_index] * fraction
        columns.append(np.where(count > 0, value, 0.0))
    return np.column_stack(columns)


def _gaps(times: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time between consecutive rows of the same group (rows in time order within each group)."""
    same = groups[1:] == groups[:-1]
    return (times[1:] - times[:-1])[same], groups[1:][same]


def _timing_features(times: np.ndarray, groups: np.ndarray, nb: int) -> np.ndarray:
    gaps, gap_groups = _gaps(times, groups)
    stats = _masked_stats(gaps, gap_groups, nb)[:, 1:]  # mean, std, min, max
    return np.column_stack((stats, _quantiles(gaps, gap_groups, nb, QUARTILES)))


STATS = ("mean", "std", "min", "max")
QUARTILE_NAMES = ("q25", "q50", "q75")
TIMING = (*STATS, *QUARTILE_NAMES)


class _Table:
    """Feature columns with their names, appended block by block."""

    def __init__(self, nb: int) -> None:
        self.nb, self.blocks, self.names = nb, [], []

    def add(self, prefix: str, values: np.ndarray, suffixes: tuple[str, ...] | None = None) -> None:
        values = np.asarray(values, dtype=np.float64).reshape(self.nb, -1)
        if suffixes is None:
            suffixes = ("",) if values.shape[1] == 1 else tuple(str(i) for i in range(values.shape[1]))
        if len(suffixes) != values.shape[1]:
            raise AssertionError(f"{prefix}: {len(suffixes)} names for {values.shape[1]} columns")
        self.blocks.append(values)
        self.names += [f"{prefix}_{suffix}" if suffix else prefix for suffix in suffixes]


def _features(rows: CaptureRows) -> tuple[np.ndarray, list[str]]:
    nb = len(rows)
    length = np.asarray(rows.length, dtype=np.int64)
    if np.any(length <= 0):
        raise ValueError("every capture needs at least one packet")
    size = np.asarray(rows.direction_size, dtype=np.float64)
    times = np.asarray(rows.timestamp, dtype=np.float64)
    if len(size) != int(length.sum()) or len(times) != len(size):
        raise ValueError("the capture lengths do not add up to the number of rows")
    start = _starts(length)
    group = np.repeat(np.arange(nb), length)
    position = np.arange(len(size)) - start[group]  # index of the packet within its capture
    times = times - times[start][group]  # relative to the capture's first packet
    outgoing = size > 0
    incoming = ~outgoing
    magnitude = np.abs(size)
    directions = (("out", outgoing, group[outgoing]), ("in", incoming, group[incoming]))
    table = _Table(nb)

    # Counts and volumes.
    n_out = np.bincount(group[outgoing], minlength=nb).astype(np.float64)
    n_in = length - n_out
    bytes_out = np.bincount(group[outgoing], weights=magnitude[outgoing], minlength=nb)
    bytes_in = np.bincount(group[incoming], weights=magnitude[incoming], minlength=nb)
    table.add("packets", length)
    table.add("packets_in", n_in)
    table.add("packets_out", n_out)
    table.add("share_out", n_out / length)
    table.add("bytes_in", bytes_in)
    table.add("bytes_out", bytes_out)
    table.add("share_bytes_out", bytes_out / np.maximum(bytes_in + bytes_out, 1))

    # Packet sizes per direction: statistics, quartiles and a coarse histogram (shares of the direction).
    for name, mask, groups in directions:
        values = magnitude[mask]
        table.add(f"size_{name}", _masked_stats(values, groups, nb)[:, 1:], STATS)
        table.add(f"size_{name}", _quantiles(values, groups, nb, QUARTILES), QUARTILE_NAMES)
        bins = np.digitize(values, SIZE_BINS[1:])
        histogram = np.bincount(groups * len(SIZE_BINS) + bins, minlength=nb * len(SIZE_BINS))
        per_direction = np.maximum(np.bincount(groups, minlength=nb), 1)[:, None]
        shares = histogram.reshape(nb, len(SIZE_BINS)) / per_direction
        table.add(f"size_{name}_from", shares, tuple(map(str, SIZE_BINS)))

    # Timing: duration, transmission-time quartiles and inter-arrival times, overall and per direction.
    table.add("duration", np.maximum.reduceat(times, start))
    table.add("time", _quantiles(times, group, nb, QUARTILES), QUARTILE_NAMES)
    table.add("gap", _timing_features(times, group, nb), TIMING)
    for name, mask, groups in directions:
        table.add(f"time_{name}", _quantiles(times[mask], groups, nb, (*QUARTILES, 1.0)), (*QUARTILE_NAMES, "last"))
        table.add(f"gap_{name}", _timing_features(times[mask], groups, nb), TIMING)

    # Packets per second (k-FP) over every second the capture spans, empty seconds included. Only non-empty
    # seconds are materialised, so a capture lasting hours costs no more memory than its packets.
    second = np.floor(times).astype(np.int64)
    spanned = (second[start + length - 1] + 1).astype(np.float64)
    new_second = np.ones(len(size), dtype=bool)
    new_second[1:] = (second[1:] != second[:-1]) | (group[1:] != group[:-1])
    second_start = np.flatnonzero(new_second)
    busy = np.diff(np.append(second_start, len(size))).astype(np.float64)  # packets of each non-empty second
    busy_group = group[second_start]
    nb_busy = np.bincount(busy_group, minlength=nb)
    mean = length / spanned
    squares = np.bincount(busy_group, weights=busy * busy, minlength=nb) / spanned
    busy_stats = _masked_stats(busy, busy_group, nb)
    lowest = np.where(nb_busy < spanned, 0.0, busy_stats[:, 3])  # an empty second counts 0 packets
    per_second = np.column_stack((mean, np.sqrt(np.maximum(squares - mean * mean, 0.0)), lowest, busy_stats[:, 4]))
    table.add("per_second", per_second, STATS)
    table.add("per_busy_second", _quantiles(busy, busy_group, nb, (0.5,)), ("q50",))
    table.add("busy_seconds", nb_busy / spanned)

    # Bursts: maximal runs of packets in one direction.
    new_run = np.ones(len(size), dtype=bool)
    new_run[1:] = (outgoing[1:] != outgoing[:-1]) | (group[1:] != group[:-1])
    run_start = np.flatnonzero(new_run)
    run_group = group[run_start]
    run_length = np.diff(np.append(run_start, len(size))).astype(np.float64)
    run_bytes = np.add.reduceat(magnitude, run_start)
    run_out = outgoing[run_start]
    table.add("bursts", np.bincount(run_group, minlength=nb))
    for name, mask in (("out", run_out), ("in", ~run_out)):
        table.add(f"burst_{name}_packets", _masked_stats(run_length[mask], run_group[mask], nb), ("count", *STATS))
        table.add(f"burst_{name}_bytes", _masked_stats(run_bytes[mask], run_group[mask], nb)[:, 1:], STATS)

    # Ordering: where the packets of each direction sit, and the first and last packets.
    for name, mask, groups in directions:
        table.add(f"position_{name}", _masked_stats(position[mask].astype(np.float64), groups, nb)[:, 1:3], STATS[:2])
    from_end = length[group] - 1 - position
    for edge, near in (("first", position < EDGE_PACKETS), ("last", from_end < EDGE_PACKETS)):
        for name, mask, _ in directions:
            table.add(f"{edge}{EDGE_PACKETS}_{name}", np.bincount(group, weights=mask & near, minlength=nb))
    first = np.zeros((nb, FIRST_PACKETS))
    early = position < FIRST_PACKETS
    first[group[early], position[early]] = size[early]
    table.add("first_size", first)
    piece = group * SLICES + (position * SLICES) // length[group]
    out_per_slice = np.bincount(piece, weights=outgoing, minlength=nb * SLICES).reshape(nb, SLICES)
    per_slice = np.bincount(piece, minlength=nb * SLICES).reshape(nb, SLICES)
    table.add("slice_share_out", out_per_slice / np.maximum(per_slice, 1))

    # CUMUL: the cumulative signed size sampled at evenly spaced cumulative absolute sizes. The absolute
    # cumulative sum over all rows rises monotonically, so one interpolation serves every capture.
    absolute = np.concatenate(([0.0], np.cumsum(magnitude)))
    signed = np.concatenate(([0.0], np.cumsum(size)))
    base_abs, base_signed = absolute[start], signed[start]
    total = absolute[start + length] - base_abs
    steps = np.arange(1, CUMUL_POINTS + 1) / CUMUL_POINTS
    queries = base_abs[:, None] + total[:, None] * steps[None, :]
    curve = np.interp(queries.ravel(), absolute, signed).reshape(nb, CUMUL_POINTS) - base_signed[:, None]
    table.add("cumul", curve, tuple(str(i) for i in range(1, CUMUL_POINTS + 1)))

    features = np.hstack(table.blocks) if table.blocks else np.zeros((nb, 0))
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0), table.names


def extract_features(rows: CaptureRows) -> np.ndarray:
    """Return the k-FP-style and CUMUL features of every capture (captures × features, float64).

    Captures must hold at least one packet; rows of each capture are contiguous and in time order.
    Column j is named feature_names()[j]. Features of a capture do not depend on the other captures.

    Raises:
        ValueError: a capture has no packet, or the lengths do not add up to the rows.
    """
    if len(rows) == 0:
        return np.zeros((0, len(feature_names())))
    return _features(rows)[0]


def feature_names() -> list[str]:
    """Names of the columns extract_features returns, in order."""
    return _features(CaptureRows(np.array([100, -200]), np.array([0.0, 0.5]), np.array([2])))[1]


# --- reading the sets ---------------------------------------------------------------------------------------


def _read_columns(source: pd.DataFrame | str | Path, columns: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """Columns of a frame, or of the one CSV inside a zip (or a plain CSV file), as numpy arrays."""
    if isinstance(source, pd.DataFrame):
        missing = [name for name in columns if name not in source.columns]
        if missing:
            raise ValueError(f"the {what} set lacks the columns {missing}")
        return {name: source[name].to_numpy() for name in columns}
    path = Path(source)
    types = {name: pa.float64() if name == "timestamp" else pa.int64() for name in columns}
    options = pacsv.ConvertOptions(include_columns=list(columns), column_types=types)
    try:
        if zipfile.is_zipfile(path):
            data = pa.py_buffer(read_single_csv(path, f"write the {what} set again."))  # far faster than streaming
        else:
            data = pa.py_buffer(path.read_bytes())
        table = pacsv.read_csv(pa.BufferReader(data), convert_options=options)
        del data
        if any(table.column(name).null_count for name in columns):
            raise ValueError("empty cells")
        arrays = {name: table.column(name).to_numpy() for name in columns}
    except (OSError, KeyError, zipfile.BadZipFile, pa.ArrowException, ValidationError) as exc:
        raise ValueError(f"the {what} set {path.name} is unreadable: {exc}") from exc
    pa.default_memory_pool().release_unused()
    return arrays


def _group(key: np.ndarray, size: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, CaptureRows]:
    """Group rows by capture key (ascending), time order within; return the key of each capture and the rows."""
    times = np.asarray(times, dtype=np.float64)
    if len(key) == 0:
        raise ValueError("the set has no packets")
    ordered = bool(np.all(key[1:] >= key[:-1]))
    if ordered:
        same = key[1:] == key[:-1]
        ordered = not np.any(same & (times[1:] < times[:-1]))
    if not ordered:
        order = np.lexsort((times, key))
        key, size, times = key[order], size[order], times[order]
    first = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1))
    length = np.diff(np.append(first, len(key)))
    return key[first], CaptureRows(size, times, length)


def load_train(source: pd.DataFrame | str | Path) -> tuple[CaptureRows, np.ndarray]:
    """Captures of a train set (columns cell_id, rep, direction_size, timestamp) and the cell of each."""
    data = _read_columns(source, TRAIN_COLUMNS, "train")
    cell = data["cell_id"].astype(np.int64, copy=False)
    rep = data["rep"].astype(np.int64, copy=False)
    _, rep_code = np.unique(rep, return_inverse=True)
    nb_reps = int(rep_code.max()) + 1 if len(rep_code) else 1
    keys, rows = _group(
        cell * nb_reps + rep_code, data["direction_size"].astype(np.int64, copy=False), data["timestamp"]
    )
    return rows, keys // nb_reps


def load_test(source: pd.DataFrame | str | Path) -> tuple[np.ndarray, CaptureRows]:
    """Capture ids (ascending) and captures of a test set (columns capture_id, direction_size, timestamp)."""
    data = _read_columns(source, TEST_COLUMNS, "test")
    ids, rows = _group(
        data["capture_id"].astype(np.int64, copy=False),
        data["direction_size"].astype(np.int64, copy=False),
        data["timestamp"],
    )
    return ids, rows


def load_labels(source: pd.DataFrame | str | Path | dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Capture ids (ascending) and true cells of a verification set (columns capture_id, cell_id) or mapping."""
    if isinstance(source, dict):
        source = pd.DataFrame({"capture_id": list(source), "cell_id": list(source.values())})
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

    train_features = extract_features(train_rows)
    test_features = extract_features(test_rows)
    proba = _fit_predict(train_features, train_cells, test_features, nb_classes, seed, nb_trees)
    score = score_probabilities(team_id, proba, true_cells)
    intervals = bootstrap_intervals(proba, true_cells, seed=seed) if with_intervals else None
    return BaselineResult(
        score=score,
        nb_train_captures=len(train_rows),
        nb_features=train_features.shape[1],
        seconds=time.perf_counter() - started,
        proba=proba,
        true_cells=true_cells,
        intervals=intervals,
    )


__all__ = [
    "BaselineResult",
    "CaptureRows",
    "extract_features",
    "load_labels",
    "load_test",
    "load_train",
    "feature_names",
    "run_baseline",
]
