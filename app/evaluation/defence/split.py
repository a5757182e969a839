"""Split of a defence's captures into the train and test sets, with new reps and capture ids."""

from dataclasses import dataclass

import numpy as np

from app.evaluation.defence.captures import Captures, _captures_per_cell
from app.evaluation.defence.settings import DefenceSettings

TEST_ID_RANGE = (10**8, 2**31)
TRAIN_REP_RANGE = (1, 10**6)


@dataclass
class DefenceSplit:
    """Which captures (indexes into Captures) go to the test set, with their new ids."""

    test: np.ndarray  # capture indexes, in the order they are written to the test file
    test_capture_id: np.ndarray  # new id of each test capture, aligned with `test`
    train: np.ndarray  # capture indexes, in the order they are written to the train file
    train_rep: np.ndarray  # new rep of each train capture, aligned with `train`


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
