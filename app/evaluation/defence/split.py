"""Split of a defence's captures into the train and test sets (stratified by cell), with new reps and ids."""

from dataclasses import dataclass

import numpy as np

from .captures import Captures, captures_per_cell
from .settings import DefenceSettings

TEST_ID_RANGE = (10**8, 2**31)
TRAIN_REP_RANGE = (1, 10**6)


@dataclass
class DefenceSplit:
    """Which captures (indexes into Captures) go to the test set, with their new ids."""

    test: np.ndarray  # capture indexes, in the order they are written to the test file (ascending new id)
    test_capture_id: np.ndarray  # new id of each test capture, aligned with `test`
    train: np.ndarray  # capture indexes, in the order they are written to the train file
    train_rep: np.ndarray  # new rep of each train capture, aligned with `train`
    # Whether each test capture is in the public subset that open-round scores are computed on, aligned with
    # `test`. Written only to the verification set: attackers never learn which captures it holds.
    test_public: np.ndarray | None = None


def quota_per_cell(nb_test: int, nb_cells: int) -> tuple[int, int]:
    """(captures every cell gives the test set, cells that give one more): as even as nb_test allows."""
    return divmod(nb_test, nb_cells) if nb_cells else (0, 0)


def split_defence(captures: Captures, settings: DefenceSettings, seed: int) -> DefenceSplit:
    """Draw the test set stratified by cell, keeping at least one train capture per cell; give new ids.

    Every cell gives nb_test // nb_cells test captures and nb_test % nb_cells cells, drawn at random among
    those with a capture to spare, give one more: the test counts say nothing about the classes beyond a
    uniform prior, whatever the train counts are. Test captures are listed in ascending new capture id
    (random ids, so the order carries no label); train captures by cell, then new rep.
    Only canonical capture order and `seed` matter, so the same file in any row order gives the same split.

    Raises:
        ValueError: too few captures for the quota (check_capture_count refuses such a defence first).
    """
    rng = np.random.default_rng(seed)
    nb_captures = len(captures)
    _, first, counts = captures_per_cell(captures)
    nb_cells = len(first)
    nb_test = settings.nb_traces_to_classify
    base, remainder = quota_per_cell(nb_test, nb_cells)
    spare = np.flatnonzero(counts >= base + 2)
    if np.any(counts < base + 1) or len(spare) < remainder:
        raise ValueError("not enough captures to split; run check_capture_count first")
    quota = np.full(nb_cells, base)
    quota[rng.choice(spare, size=remainder, replace=False)] += 1
    # A random rank of every capture inside its cell (captures are grouped by cell in canonical order).
    cell_of = np.repeat(np.arange(nb_cells), counts)
    shuffled = np.lexsort((rng.random(nb_captures), cell_of))
    rank = np.empty(nb_captures, dtype=np.int64)
    rank[shuffled] = np.arange(nb_captures) - np.repeat(first, counts)
    test = np.flatnonzero(rank < quota[cell_of])
    test_capture_id = rng.choice(TEST_ID_RANGE[1] - TEST_ID_RANGE[0], size=nb_test, replace=False) + TEST_ID_RANGE[0]
    by_id = np.argsort(test_capture_id)
    test, test_capture_id = test[by_id], test_capture_id[by_id]
    in_test = np.zeros(nb_captures, dtype=bool)
    in_test[test] = True
    train = np.flatnonzero(~in_test)
    train_rep = rng.choice(TRAIN_REP_RANGE[1] - TRAIN_REP_RANGE[0], size=len(train), replace=False) + TRAIN_REP_RANGE[0]
    # Write train captures by cell then new rep so the file order says nothing of the original reps.
    order = np.lexsort((train_rep, captures.cell_id[train]))
    # Drawn last, so the ids and reps a seed gives are the same as before public subsets existed.
    test_public = draw_public(captures.cell_id[test], settings.public_score_fraction, rng)
    return DefenceSplit(
        test=test,
        test_capture_id=test_capture_id.astype(np.int64),
        train=train[order],
        train_rep=train_rep[order].astype(np.int64),
        test_public=test_public,
    )


def public_size(nb_test: int, fraction: float) -> int:
    """How many test captures the public subset holds: fraction of them, rounded, at least one."""
    return min(nb_test, max(1, round(nb_test * fraction))) if nb_test else 0


def draw_public(test_cells: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Pick the public subset of a test set, stratified by cell as evenly as the test counts allow.

    Args:
        test_cells: the cell of every test capture.
        fraction: share of the test set to make public (0 < fraction <= 1); see public_size.
        rng: the split's generator.

    Returns:
        A boolean mask aligned with test_cells. Every cell gives public_size // nb_cells captures and, drawn at
        random among the cells with one to spare, the remainder gives one more each; inside a cell the public
        captures are drawn at random. With a stratified test set of 3 captures per cell and fraction 1/3, every
        cell has exactly one public capture.
    """
    nb_test = len(test_cells)
    public = np.zeros(nb_test, dtype=bool)
    if nb_test == 0:
        return public
    cells, cell_of, counts = np.unique(test_cells, return_inverse=True, return_counts=True)
    wanted = public_size(nb_test, fraction)
    quota = np.minimum(counts, wanted // len(cells))
    # Whatever the even share leaves (the remainder, and what cells with too few captures could not give)
    # comes from cells with captures to spare, one each per pass.
    missing = wanted - int(quota.sum())
    while missing > 0:
        spare = np.flatnonzero(counts > quota)
        extra = rng.choice(spare, size=min(missing, len(spare)), replace=False)
        quota[extra] += 1
        missing -= len(extra)
    order = np.lexsort((rng.random(nb_test), cell_of))
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(nb_test, dtype=np.int64)
    rank[order] = np.arange(nb_test) - np.repeat(first, counts)
    public[rank < quota[cell_of]] = True
    return public
