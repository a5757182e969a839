"""Bootstrap confidence intervals on an attack's scores (accuracy, top-5 accuracy, macro ROC-AUC).

Method (quotable): an attack is scored on a few hundred test captures, so its scores carry sampling noise.
We estimate it with the nonparametric percentile bootstrap over test captures: draw, with replacement, as many
captures as the test set holds (1,000 times, from a seeded generator, so the same upload always gets the same
interval); score each resample exactly as the upload is scored (accuracy, top-5 accuracy, and the macro average
over the classes present in the resample of the one-vs-rest ROC-AUC, ties counting half); the 95 % interval
runs from the 2.5th to the 97.5th percentile of the 1,000 resampled scores. The interval describes how much
the score would move on another test set drawn the same way from the same defence; it does not cover what a
better attack could reach.

All resamples are scored at once: a resample is a vector of counts (how often each capture was drawn), so
accuracies are one matrix product, and ROC-AUCs follow from a captures × captures matrix of pairwise
comparisons (does capture j score lower than capture i for i's class?) weighted by the counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

NB_RESAMPLES = 1000
LEVEL = 0.95
TOP_K = 5


@dataclass(frozen=True)
class Interval:
    """A score and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float

    @property
    def minus(self) -> float:
        """Distance from the estimate down to the low end (for a "+x / −y" display)."""
        return self.estimate - self.low

    @property
    def plus(self) -> float:
        """Distance from the estimate up to the high end."""
        return self.high - self.estimate

    def to_dict(self) -> dict:
        """Return the estimate and bounds as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class ScoreIntervals:
    """Bootstrap intervals of the three scores of one attack on one defence."""

    accuracy: Interval
    top5_accuracy: Interval
    roc_auc: Interval
    level: float
    nb_resamples: int
    seed: int

    def to_dict(self) -> dict:
        """Return the intervals as a JSON-serialisable dict."""
        return {
            "accuracy": self.accuracy.to_dict(),
            "top5_accuracy": self.top5_accuracy.to_dict(),
            "roc_auc": self.roc_auc.to_dict(),
            "level": self.level,
            "nb_resamples": self.nb_resamples,
            "seed": self.seed,
        }


def _hits(proba: np.ndarray, true_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per capture: is the true class ranked first, and among the first five (ties to the lower class index)?

    The same tie rule as the attack scorer, so the full-sample estimates equal its scores.
    """
    nb_captures, nb_classes = proba.shape
    first = np.argmax(proba, axis=1) == true_index
    true_proba = proba[np.arange(nb_captures), true_index][:, None]
    columns = np.arange(nb_classes)[None, :]
    ahead = (proba > true_proba) | ((proba == true_proba) & (columns < true_index[:, None]))
    return first.astype(np.float64), (ahead.sum(axis=1) < min(TOP_K, nb_classes)).astype(np.float64)


def _pairwise_wins(proba: np.ndarray, true_index: np.ndarray) -> np.ndarray:
    """wins[i, j]: 1 when capture j (of another class) scores lower than i for i's class, 0.5 when equal."""
    own = proba[np.arange(len(true_index)), true_index]  # score of each capture for its own class
    others = proba[:, true_index].T  # others[i, j]: score of capture j for the class of capture i
    wins = (others < own[:, None]) + 0.5 * (others == own[:, None])
    wins[true_index[:, None] == true_index[None, :]] = 0.0  # only negatives count
    return wins


def _macro_auc(counts: np.ndarray, wins: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Macro one-vs-rest ROC-AUC of every resample (rows of counts), over the classes present in each."""
    nb_captures = counts.sum(axis=1, keepdims=True)
    negatives_below = counts @ wins.T  # [b, i]: weighted negatives that capture i beats for its class
    numerator = (counts * negatives_below) @ membership  # [b, class]
    positives = counts @ membership
    negatives = nb_captures - positives
    present = positives > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(present & (negatives > 0), numerator / (positives * negatives), 0.0)
    nb_present = present.sum(axis=1)
    macro = auc.sum(axis=1) / np.maximum(nb_present, 1)
    return np.where(nb_present >= 2, macro, 0.5)  # undefined with fewer than two classes, as in the scorer


def bootstrap_intervals(
    proba: np.ndarray,
    true_cells: np.ndarray,
    *,
    nb_resamples: int = NB_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> ScoreIntervals:
    """Return percentile-bootstrap intervals of accuracy, top-5 accuracy and macro ROC-AUC.

    Args:
        proba: captures × classes probabilities, class c (1-based) in column c - 1, as scored.
        true_cells: the true class (1-based) of each capture.
        nb_resamples: bootstrap resamples, each as many captures as the test set, drawn with replacement.
        level: the interval's nominal coverage (0.95: from the 2.5th to the 97.5th percentile).
        seed: seed of the resampling; the same inputs and seed give the same intervals.

    Returns:
        ScoreIntervals whose estimates are the scores of the whole test set (equal to the attack scorer's)
        and whose bounds are percentiles of the resampled scores.

    Raises:
        ValueError: shapes disagree, no capture, a class outside 1..classes, or level not in (0, 1).
    """
    proba = np.asarray(proba, dtype=np.float64)
    true_cells = np.asarray(true_cells, dtype=np.int64)
    if proba.ndim != 2 or len(proba) != len(true_cells) or len(true_cells) == 0:
        raise ValueError("proba must be captures × classes with one true class per capture")
    if true_cells.min() < 1 or true_cells.max() > proba.shape[1]:
        raise ValueError(f"true classes must lie in 1..{proba.shape[1]}")
    if not 0 < level < 1 or nb_resamples < 1:
        raise ValueError("level must lie in (0, 1) and nb_resamples be positive")
    nb_captures = len(true_cells)
    true_index = true_cells - 1
    first, top5 = _hits(proba, true_index)
    wins = _pairwise_wins(proba, true_index)
    present, position = np.unique(true_index, return_inverse=True)
    membership = np.zeros((nb_captures, len(present)))
    membership[np.arange(nb_captures), position] = 1.0

    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, nb_captures, size=(nb_resamples, nb_captures))
    drawn += (np.arange(nb_resamples) * nb_captures)[:, None]
    counts = np.bincount(drawn.ravel(), minlength=nb_resamples * nb_captures).reshape(nb_resamples, nb_captures)
    counts = counts.astype(np.float64)
    everything = np.ones((1, nb_captures))

    tail = (1 - level) / 2
    intervals = []
    for per_capture in (first, top5):
        resampled = counts @ per_capture / nb_captures
        intervals.append((float(per_capture.mean()), resampled))
    intervals.append((float(_macro_auc(everything, wins, membership)[0]), _macro_auc(counts, wins, membership)))
    accuracy, top5_accuracy, roc_auc = (
        Interval(estimate, float(np.quantile(resampled, tail)), float(np.quantile(resampled, 1 - tail)))
        for estimate, resampled in intervals
    )
    return ScoreIntervals(accuracy, top5_accuracy, roc_auc, level=level, nb_resamples=nb_resamples, seed=seed)


def half_width(intervals: dict | None, name: str) -> float | None:
    """Half the width of a stored interval (ScoreIntervals.to_dict()[name]); None when absent."""
    if not intervals or not intervals.get(name):
        return None
    return (float(intervals[name]["high"]) - float(intervals[name]["low"])) / 2


def combined_half_width(half_widths: list[float | None]) -> float | None:
    """Half-width of the interval of a mean of independent scores: sqrt(sum of squared half-widths) / count.

    The normal approximation of the mean's spread; None when the list is empty or any half-width is unknown.
    """
    if not half_widths or any(width is None for width in half_widths):
        return None
    return float(np.sqrt(np.sum(np.square(half_widths)))) / len(half_widths)


__all__ = [
    "LEVEL",
    "NB_RESAMPLES",
    "Interval",
    "ScoreIntervals",
    "bootstrap_intervals",
    "combined_half_width",
    "half_width",
]
