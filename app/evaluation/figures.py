"""The numbers behind the pages' figures, from an attack's probabilities and the captures' true cells.

- Per-cell recall (where a defence leaks): for each cell, how many of its test captures the attack's top guess
  named correctly. The cells are the squares of SecretStroll's grid, numbered row by row from the top left:
  cell c sits in row (c - 1) // columns and column (c - 1) % columns (10 × 10 for the 100 cells).
- The micro-averaged one-vs-rest ROC curve: every (capture, cell) pair is one binary decision, "is this capture
  of this cell?", scored by the attack's probability; its area is the micro AUC (the leaderboard's ROC-AUC is the
  macro one, the mean of the per-cell curves' areas: the two differ).
- Top-k accuracy for k = 1..10: the share of captures whose true cell is among the k cells ranked first, ties
  broken towards the lower cell as the scorer does (k = 1 is the accuracy, k = 5 the top-5 accuracy).

Probabilities are captures × cells, cell c in column c - 1; true cells run from 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MOST_EXPOSED = 5
MAX_K = 10
ROC_POINTS = 200  # points kept of a ROC curve: enough to draw it, a few kilobytes on a page
FPR_MARKS = (0.01, 0.05, 0.1, 0.2)  # false-positive rates at which the pages read the curve off


def grid_shape(nb_cells: int) -> tuple[int, int]:
    """(rows, columns) of the grid holding nb_cells cells: a square when nb_cells is one (10 × 10 for 100)."""
    if nb_cells < 1:
        raise ValueError(f"a grid needs at least one cell, got {nb_cells}")
    columns = math.isqrt(nb_cells - 1) + 1
    return -(-nb_cells // columns), columns


@dataclass
class CellCounts:
    """Per cell (cell c at index c - 1): its scored captures, and how many of them the top guess named."""

    captures: list[int]
    recognised: list[int]

    def __post_init__(self) -> None:
        if len(self.captures) != len(self.recognised):
            raise ValueError("captures and recognised must have one entry per cell")
        if any(r < 0 or r > c for c, r in zip(self.captures, self.recognised, strict=True)):
            raise ValueError("a cell cannot have more recognised captures than captures, nor fewer than 0")

    @property
    def recall(self) -> list[float | None]:
        """Per cell, the share of its captures recognised; None for a cell without captures."""
        return [r / c if c else None for c, r in zip(self.captures, self.recognised, strict=True)]

    def most_exposed(self, count: int = MOST_EXPOSED) -> list[int]:
        """The cells recognised most often (highest recall, then more captures, then the lower cell), at most count."""
        pairs = enumerate(zip(self.captures, self.recognised, strict=True), start=1)
        scored = [(-r / c, -c, cell) for cell, (c, r) in pairs if c]
        return [cell for _, _, cell in sorted(scored)[:count]]

    def tied_beyond(self, count: int = MOST_EXPOSED) -> int:
        """How many cells not in most_exposed(count) share the recall of the last one named (when many cells are
        recognised every time, the five named are only the first of them)."""
        named = self.most_exposed(count)
        if len(named) < count:
            return 0
        last = self.recall[named[-1] - 1]
        return sum(1 for cell, value in enumerate(self.recall, start=1) if value == last and cell not in named)

    def __add__(self, other: CellCounts) -> CellCounts:
        """Counts pooled over two attacks (of the same grid)."""
        if len(other.captures) != len(self.captures):
            raise ValueError("cannot pool counts of grids of different sizes")
        return CellCounts(
            [a + b for a, b in zip(self.captures, other.captures, strict=True)],
            [a + b for a, b in zip(self.recognised, other.recognised, strict=True)],
        )

    def to_dict(self) -> dict:
        """The counts with what follows from them: recall per cell and the most exposed cells."""
        return {
            "captures": list(self.captures),
            "recognised": list(self.recognised),
            "recall": self.recall,
            "most_exposed": self.most_exposed(),
            "tied_beyond": self.tied_beyond(),
        }

    @classmethod
    def from_dict(cls, data: object, nb_cells: int) -> CellCounts | None:
        """Counts stored by to_dict (or with only captures and recognised); None when absent or not of this grid."""
        if not isinstance(data, dict):
            return None
        captures, recognised = data.get("captures"), data.get("recognised")
        if not (isinstance(captures, list) and isinstance(recognised, list)):
            return None
        if len(captures) != nb_cells or len(recognised) != nb_cells:
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in captures + recognised):
            return None
        try:
            return cls(captures, recognised)
        except ValueError:
            return None


def cell_counts(proba: np.ndarray, true_cells: np.ndarray, nb_cells: int) -> CellCounts:
    """Per-cell captures and top-guess hits of an attack (ties in the top guess go to the lower cell, as the
    accuracy's do: the recognised counts sum to accuracy × captures)."""
    proba, true_cells = np.asarray(proba), np.asarray(true_cells, dtype=np.int64)
    if proba.ndim != 2 or proba.shape[0] != len(true_cells):
        raise ValueError("proba must have one row per capture")
    if len(true_cells) and (true_cells.min() < 1 or true_cells.max() > nb_cells):
        raise ValueError(f"true cells must run from 1 to {nb_cells}")
    hit = np.argmax(proba, axis=1) == true_cells - 1 if len(true_cells) else np.zeros(0, dtype=bool)
    captures = np.bincount(true_cells - 1, minlength=nb_cells)
    recognised = np.bincount(true_cells - 1, weights=hit, minlength=nb_cells)
    return CellCounts([int(v) for v in captures], [int(round(v)) for v in recognised])


@dataclass
class AttackCurves:
    """An attack's micro-averaged ROC curve (downsampled) and its top-k accuracies, on nb_captures captures."""

    nb_captures: int
    fpr: list[float]
    tpr: list[float]
    micro_auc: float
    tpr_at: dict[str, float]  # false-positive rate (as text: "0.01") -> true-positive rate there
    top_k: list[float]  # k = 1 .. len(top_k)

    def to_dict(self) -> dict:
        return {
            "nb_captures": self.nb_captures,
            "roc": {"fpr": self.fpr, "tpr": self.tpr, "micro_auc": self.micro_auc},
            "tpr_at_fpr": self.tpr_at,
            "top_k": self.top_k,
        }


def top_k_accuracies(proba: np.ndarray, true_cells: np.ndarray, max_k: int = MAX_K) -> list[float]:
    """Top-k accuracy for k = 1..min(max_k, cells): the true cell ranks below k when cells are ordered by
    probability descending, then by cell ascending (the scorer's tie rule)."""
    proba, true_index = np.asarray(proba, dtype=np.float64), np.asarray(true_cells, dtype=np.int64) - 1
    nb_captures, nb_cells = proba.shape
    true_proba = proba[np.arange(nb_captures), true_index][:, None]
    columns = np.arange(nb_cells)[None, :]
    ahead = (proba > true_proba) | ((proba == true_proba) & (columns < true_index[:, None]))
    rank = ahead.sum(axis=1)
    return [float(np.mean(rank < k)) for k in range(1, min(max_k, nb_cells) + 1)]


def downsample_curve(fpr: np.ndarray, tpr: np.ndarray, max_points: int = ROC_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most max_points points of a curve, spread evenly along its length, ends kept: the drawn shape is kept
    (straight stretches need few points) while a curve of thousands of thresholds shrinks to a few kilobytes."""
    fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    if len(fpr) <= max_points:
        return fpr, tpr
    length = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(fpr), np.diff(tpr)))))
    wanted = np.linspace(0.0, length[-1], max_points)
    picked = np.unique(np.searchsorted(length, wanted, side="left").clip(0, len(fpr) - 1))
    picked = np.union1d(picked, [0, len(fpr) - 1])
    return fpr[picked], tpr[picked]


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, mark: float) -> float:
    """The curve's true-positive rate at a false-positive rate: its points are joined by straight lines, and at a
    vertical step (several thresholds at one rate) the top of the step counts, as a threshold there reaches it."""
    last = int(np.searchsorted(fpr, mark, side="right")) - 1  # the last point at or left of mark: the step's top
    if last >= len(fpr) - 1:
        return float(tpr[-1])
    share = (mark - fpr[last]) / (fpr[last + 1] - fpr[last])
    return float(tpr[last] + share * (tpr[last + 1] - tpr[last]))


def attack_curves(
    proba: np.ndarray, true_cells: np.ndarray, *, max_points: int = ROC_POINTS, max_k: int = MAX_K
) -> AttackCurves:
    """The micro-averaged one-vs-rest ROC curve (scikit-learn's roc_curve on the binarised labels), its area,
    its true-positive rate at FPR_MARKS (read off the full curve, linearly between thresholds) and the top-k
    accuracies, of one attack on the captures given."""
    proba, true_cells = np.asarray(proba, dtype=np.float64), np.asarray(true_cells, dtype=np.int64)
    nb_captures, nb_cells = proba.shape
    if nb_captures == 0 or nb_cells < 2:
        raise ValueError("a ROC curve needs at least one capture and two cells")
    # scikit-learn (and pandas with it) is imported here, not with the module: the web, worker and beat processes
    # import this module at start and would otherwise load it whole, about 120 MB and 1.5 s each.
    from sklearn.metrics import auc as area_under
    from sklearn.metrics import roc_curve

    truth = np.zeros((nb_captures, nb_cells), dtype=bool)
    truth[np.arange(nb_captures), true_cells - 1] = True
    fpr, tpr, _ = roc_curve(truth.ravel(), proba.ravel())
    micro_auc = float(area_under(fpr, tpr))
    tpr_at = {f"{mark:g}": _tpr_at(fpr, tpr, mark) for mark in FPR_MARKS}
    small_fpr, small_tpr = downsample_curve(fpr, tpr, max_points)
    return AttackCurves(
        nb_captures=int(nb_captures),
        fpr=[round(float(v), 5) for v in small_fpr],
        tpr=[round(float(v), 5) for v in small_tpr],
        micro_auc=micro_auc,
        tpr_at=tpr_at,
        top_k=top_k_accuracies(proba, true_cells, max_k),
    )


__all__ = [
    "FPR_MARKS",
    "MAX_K",
    "MOST_EXPOSED",
    "AttackCurves",
    "CellCounts",
    "attack_curves",
    "cell_counts",
    "downsample_curve",
    "grid_shape",
    "top_k_accuracies",
]
