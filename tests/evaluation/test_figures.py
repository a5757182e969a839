"""The numbers behind the pages' figures: per-cell recall, the micro-averaged ROC curve and top-k accuracy."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app.evaluation.attack import score_probabilities
from app.evaluation.figures import (
    CellCounts,
    attack_curves,
    cell_counts,
    downsample_curve,
    grid_shape,
    top_k_accuracies,
)


def _attack(seed: int = 0, nb_captures: int = 300, nb_cells: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a middling attack: the true cell gets a random boost, the rest is noise."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(1, nb_cells + 1, nb_captures)
    proba = rng.dirichlet(np.full(nb_cells, 0.3), nb_captures)
    proba[np.arange(nb_captures), cells - 1] += 0.3 * rng.random(nb_captures)
    return proba / proba.sum(axis=1, keepdims=True), cells


def test_the_grid_is_square_when_it_can_be():
    assert grid_shape(100) == (10, 10)
    assert grid_shape(4) == (2, 2)
    assert grid_shape(5) == (2, 3)
    assert grid_shape(1) == (1, 1)
    with pytest.raises(ValueError):
        grid_shape(0)


def test_cell_counts_add_up_to_the_accuracy_and_name_the_most_exposed_cells():
    proba = np.array(
        [
            [0.9, 0.1, 0.0, 0.0],  # cell 1, right
            [0.2, 0.8, 0.0, 0.0],  # cell 1, wrong
            [0.0, 0.7, 0.3, 0.0],  # cell 2, right
            [0.0, 0.6, 0.4, 0.0],  # cell 3, wrong
            [0.5, 0.0, 0.0, 0.5],  # cell 4: a tie goes to the lower cell, wrong as the accuracy counts it
        ]
    )
    cells = np.array([1, 1, 2, 3, 4])
    counts = cell_counts(proba, cells, 5)
    assert counts.captures == [2, 1, 1, 1, 0]
    assert counts.recognised == [1, 1, 0, 0, 0]
    assert sum(counts.recognised) / len(cells) == score_probabilities(0, proba, cells).accuracy
    assert counts.recall == [0.5, 1.0, 0.0, 0.0, None]
    assert counts.most_exposed() == [2, 1, 3, 4]  # recall first; equal recalls: the lower cell; no empty cell
    assert counts.most_exposed(1) == [2]
    assert counts.tied_beyond() == 0


def test_cells_as_exposed_as_the_last_one_named_are_counted():
    counts = CellCounts([3] * 8 + [0], [3] * 7 + [1, 0])
    assert counts.most_exposed() == [1, 2, 3, 4, 5]
    assert counts.tied_beyond() == 2  # cells 6 and 7 are recognised every time too
    assert counts.to_dict()["tied_beyond"] == 2


def test_counts_pool_and_come_back_from_their_stored_form():
    a, b = CellCounts([2, 1], [1, 1]), CellCounts([1, 3], [1, 0])
    assert (a + b) == CellCounts([3, 4], [2, 1])
    stored = (a + b).to_dict()
    assert stored["recall"] == [2 / 3, 0.25] and stored["most_exposed"] == [1, 2]
    assert CellCounts.from_dict(stored, 2) == a + b
    assert CellCounts.from_dict({"captures": [1, 1]}, 2) is None  # older or damaged: "not available yet"
    assert CellCounts.from_dict(stored, 100) is None  # another grid
    assert CellCounts.from_dict({"captures": [1, 1], "recognised": [2, 0]}, 2) is None
    assert CellCounts.from_dict(None, 2) is None
    with pytest.raises(ValueError):
        a + CellCounts([1], [1])


def test_top_k_matches_the_scorer_at_1_and_5_and_never_falls():
    proba, cells = _attack()
    score = score_probabilities(0, proba, cells)
    top_k = top_k_accuracies(proba, cells)
    assert len(top_k) == 10
    assert top_k[0] == score.accuracy and top_k[4] == score.top5_accuracy
    assert all(a <= b for a, b in zip(top_k, top_k[1:], strict=False))
    three = top_k_accuracies(proba[:, :3], np.ones(300, int))  # k stops at the number of cells
    assert len(three) == 3 and three[-1] == 1.0


def test_the_micro_roc_curve_is_scikit_learns_and_keeps_its_shape_when_downsampled():
    proba, cells = _attack(1)
    truth = np.zeros_like(proba, dtype=bool)
    truth[np.arange(len(cells)), cells - 1] = True
    curves = attack_curves(proba, cells, max_points=50)
    assert curves.micro_auc == pytest.approx(roc_auc_score(truth.ravel(), proba.ravel()))
    assert curves.nb_captures == 300 and len(curves.fpr) <= 52
    assert (curves.fpr[0], curves.tpr[0]) == (0.0, 0.0) and (curves.fpr[-1], curves.tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(curves.fpr) >= 0) and np.all(np.diff(curves.tpr) >= 0)
    # The area under the kept points stays close to the full curve's.
    assert np.trapezoid(curves.tpr, curves.fpr) == pytest.approx(curves.micro_auc, abs=0.01)
    rates = list(curves.tpr_at.values())
    assert list(curves.tpr_at) == ["0.01", "0.05", "0.1", "0.2"] and rates == sorted(rates)
    assert curves.to_dict()["roc"]["micro_auc"] == curves.micro_auc


def test_a_perfect_attack_reads_a_true_positive_rate_of_1_everywhere():
    cells = np.repeat(np.arange(1, 5), 3)
    proba = np.eye(4)[cells - 1]
    curves = attack_curves(proba, cells)
    assert curves.micro_auc == 1.0 and set(curves.tpr_at.values()) == {1.0} and curves.top_k == [1.0] * 4


def test_uniform_probabilities_lie_on_the_chance_diagonal():
    cells = np.repeat(np.arange(1, 11), 5)
    curves = attack_curves(np.full((50, 10), 0.1), cells)
    assert curves.micro_auc == pytest.approx(0.5)
    assert curves.tpr_at["0.1"] == pytest.approx(0.1)


def test_downsampling_keeps_the_ends_and_leaves_short_curves_alone():
    fpr, tpr = np.linspace(0, 1, 5000), np.sqrt(np.linspace(0, 1, 5000))
    small_fpr, small_tpr = downsample_curve(fpr, tpr, 100)
    assert len(small_fpr) <= 101 and small_fpr[0] == 0 and small_fpr[-1] == 1 and small_tpr[-1] == 1
    same = downsample_curve(fpr[:10], tpr[:10], 100)
    assert np.array_equal(same[0], fpr[:10])


def test_curves_refuse_what_cannot_be_drawn():
    with pytest.raises(ValueError):
        attack_curves(np.zeros((0, 4)), np.zeros(0, int))
    with pytest.raises(ValueError):
        cell_counts(np.ones((2, 4)), np.array([1, 5]), 4)
