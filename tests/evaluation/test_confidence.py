"""Bootstrap confidence intervals: they agree with the scorer and cover the true value at the nominal rate."""

import math

import numpy as np
import pytest

from app.evaluation.attack import macro_ovr_auc, score_probabilities
from app.evaluation.confidence import _macro_auc, _pairwise_wins, bootstrap_intervals


def noisy_attack(rng: np.random.Generator, nb_captures: int, nb_classes: int, signal: float):
    """Scores N(0, 1) for every class, plus `signal` for the true class: an attack of known quality."""
    true_cells = rng.integers(1, nb_classes + 1, size=nb_captures)
    proba = rng.normal(size=(nb_captures, nb_classes))
    proba[np.arange(nb_captures), true_cells - 1] += signal
    return proba, true_cells


def test_estimates_are_the_scorer_s_scores_and_intervals_contain_them():
    rng = np.random.default_rng(0)
    proba, cells = noisy_attack(rng, 300, 100, 2.0)
    proba = np.round(proba, 1)  # ties, which both must break the same way
    score = score_probabilities(0, proba, cells)
    intervals = bootstrap_intervals(proba, cells, seed=3)
    assert intervals.accuracy.estimate == pytest.approx(score.accuracy)
    assert intervals.top5_accuracy.estimate == pytest.approx(score.top5_accuracy)
    assert intervals.roc_auc.estimate == pytest.approx(score.roc_auc)
    for interval in (intervals.accuracy, intervals.top5_accuracy, intervals.roc_auc):
        assert interval.low < interval.estimate < interval.high
        assert interval.minus > 0 and interval.plus > 0
    assert intervals.to_dict()["roc_auc"]["low"] == intervals.roc_auc.low
    assert (intervals.nb_resamples, intervals.level) == (1000, 0.95)


def test_resampled_auc_equals_the_scorer_on_the_resampled_captures():
    rng = np.random.default_rng(1)
    proba, cells = noisy_attack(rng, 120, 15, 1.0)
    proba = np.round(proba, 1)
    index = cells - 1
    present, position = np.unique(index, return_inverse=True)
    membership = np.zeros((len(cells), len(present)))
    membership[np.arange(len(cells)), position] = 1
    wins = _pairwise_wins(proba, index)
    for _ in range(5):
        drawn = rng.integers(0, len(cells), size=len(cells))
        counts = np.bincount(drawn, minlength=len(cells))[None, :].astype(float)
        assert _macro_auc(counts, wins, membership)[0] == pytest.approx(macro_ovr_auc(proba[drawn], cells[drawn]))


def test_seeded_and_degenerate_cases():
    rng = np.random.default_rng(2)
    proba, cells = noisy_attack(rng, 100, 10, 1.0)
    assert bootstrap_intervals(proba, cells, seed=5) == bootstrap_intervals(proba, cells, seed=5)
    assert bootstrap_intervals(proba, cells, seed=5) != bootstrap_intervals(proba, cells, seed=6)
    perfect = np.eye(10)[cells - 1]
    exact = bootstrap_intervals(perfect, cells)
    assert (exact.accuracy.low, exact.accuracy.high, exact.roc_auc.low, exact.roc_auc.high) == (1, 1, 1, 1)
    uniform = bootstrap_intervals(np.full((100, 10), 0.1), cells)
    assert uniform.roc_auc.low == uniform.roc_auc.high == 0.5
    with pytest.raises(ValueError, match="true classes"):
        bootstrap_intervals(proba, cells + 10)
    with pytest.raises(ValueError, match="captures × classes"):
        bootstrap_intervals(proba[:5], cells)


def true_scores(signal: float, nb_classes: int) -> tuple[float, float, float]:
    """Accuracy, top-5 accuracy and macro ROC-AUC of noisy_attack over infinitely many captures."""
    z = np.linspace(-8, 8, 20001)
    density = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = np.array([0.5 * (1 + math.erf((v + signal) / math.sqrt(2))) for v in z])
    accuracy = float(np.trapezoid(density * cdf ** (nb_classes - 1), z))
    # Top-5: the true class is beaten by at most four of the others; binomial in the others' beat probability.
    beaten = 1 - cdf
    top5 = sum(
        math.comb(nb_classes - 1, k) * np.trapezoid(density * beaten**k * cdf ** (nb_classes - 1 - k), z)
        for k in range(5)
    )
    auc = 0.5 * (1 + math.erf(signal / 2))  # P(N(signal, 1) > N(0, 1)) = Phi(signal / sqrt 2)
    return accuracy, float(top5), auc


def test_intervals_cover_the_true_value_at_about_the_nominal_rate():
    nb_classes, signal, experiments = 20, 1.5, 200
    truth = true_scores(signal, nb_classes)
    rng = np.random.default_rng(42)
    covered = np.zeros(3)
    for experiment in range(experiments):
        proba, cells = noisy_attack(rng, 200, nb_classes, signal)
        intervals = bootstrap_intervals(proba, cells, seed=experiment)
        for k, interval in enumerate((intervals.accuracy, intervals.top5_accuracy, intervals.roc_auc)):
            covered[k] += interval.low <= truth[k] <= interval.high
    coverage = covered / experiments
    named = dict(zip(["accuracy", "top5", "auc"], coverage, strict=True))
    assert np.all((coverage >= 0.88) & (coverage <= 0.99)), named
