"""How alike two teams' uploads are: evidence of copying for the course staff, never a penalty by itself.

Attacks on the same target are compared on the captures both classified, by their canonical (pool) ids: each
attacker gets the target's test pool under its own capture ids, which the caller maps back first.
Defences are compared by the SHA-256 of their uploads and by the packet-size sequences of their captures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# Attack thresholds. Honest attackers of one defence are right on mostly the same (easy) captures, so agreeing on
# top guesses is expected of two good attackers; where they are wrong they usually guess differently, since
# two models rarely make the same mistake among ~100 cells. Agreeing on wrong guesses is the tell.
SAME_WRONG_GUESS_THRESHOLD = 0.6
"""Share of the captures both attackers got wrong on which they made the same wrong guess. Independent attackers
with realistic accuracy stay well below it (they confuse a few look-alike cells in common); a copy is at 1, a copy
with noise added to its probabilities stays close to 1."""
MIN_BOTH_WRONG = 10
"""The wrong-guess agreement only counts (and can cross its threshold) over at least this many captures both got
wrong: two near-perfect attackers share too few mistakes to say anything."""
SAME_TOP_GUESS_THRESHOLD = 0.98
"""Share of captures with the same top guess. Two strong honest attackers agree on most captures, so only near
total agreement counts on its own."""
CORRELATION_THRESHOLD = 0.98
"""Pearson correlation of the two probability matrices (every capture × cell). Different models spread their
probabilities differently even when they agree on the top guess; a copy with small noise stays near 1."""

# Defence thresholds.
SHARED_TRACES_THRESHOLD = 0.2
"""Share of the smaller defence's captures whose packet-size sequence also appears in the other defence. Two
teams capture their own traffic, so an exact sequence of hundreds of packet sizes is practically never shared by
chance; a share this high means traces were copied (timestamps may have been changed)."""

IDENTICAL_FILE = "identical_file"
SAME_WRONG_GUESSES = "same_wrong_guesses"
SAME_TOP_GUESSES = "same_top_guesses"
CORRELATED_PROBABILITIES = "correlated_probabilities"
SHARED_TRACES = "shared_traces"

THRESHOLD_TEXT = {
    IDENTICAL_FILE: "byte-identical uploads (same SHA-256)",
    SAME_WRONG_GUESSES: f"same wrong guess on at least {SAME_WRONG_GUESS_THRESHOLD:.0%} of the captures both got "
    f"wrong (at least {MIN_BOTH_WRONG} such captures)",
    SAME_TOP_GUESSES: f"same top guess on at least {SAME_TOP_GUESS_THRESHOLD:.0%} of the captures",
    CORRELATED_PROBABILITIES: f"probability matrices correlated at {CORRELATION_THRESHOLD} or more",
    SHARED_TRACES: f"at least {SHARED_TRACES_THRESHOLD:.0%} of the captures have the same packet-size sequence",
}


@dataclass
class AttackSimilarity:
    """How alike two attacks on one target are, over the captures both classified."""

    nb_captures: int
    same_top_guess: float | None  # share of captures with the same top guess
    both_wrong: int  # captures both got wrong
    same_wrong_guess: float | None  # among those, share with the same wrong guess (None: none both wrong)
    correlation: float | None  # Pearson correlation of the probability matrices (None: a constant matrix)
    identical_file: bool
    accuracy_a: float | None = None
    accuracy_b: float | None = None
    thresholds: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DefenceSimilarity:
    """How alike two defences are."""

    identical_file: bool
    nb_captures_a: int
    nb_captures_b: int
    shared_traces: int | None  # captures of the smaller defence whose size sequence appears in the other one
    shared_share: float | None  # shared_traces / the smaller defence's number of captures (None: not read)
    thresholds: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def align(ids_a: np.ndarray, proba_a: np.ndarray, ids_b: np.ndarray, proba_b: np.ndarray):
    """(common canonical ids ascending, rows of proba_a, rows of proba_b) over the captures both classified."""
    ids_a, ids_b = np.asarray(ids_a), np.asarray(ids_b)
    common, rows_a, rows_b = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    return common, np.asarray(proba_a)[rows_a], np.asarray(proba_b)[rows_b]


def compare_attacks(
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    true_cells: np.ndarray | None = None,
    *,
    sha256_a: str | None = None,
    sha256_b: str | None = None,
) -> AttackSimilarity:
    """Compare two attacks' probabilities (captures × cells, rows aligned on the same captures; cell c in column
    c - 1) with the captures' true cells (needed for the wrong-guess agreement) and their uploads' SHA-256."""
    proba_a, proba_b = np.asarray(proba_a, dtype=np.float64), np.asarray(proba_b, dtype=np.float64)
    if proba_a.shape != proba_b.shape:
        raise ValueError(f"the matrices differ in shape: {proba_a.shape} and {proba_b.shape}")
    n = proba_a.shape[0]
    identical = bool(sha256_a and sha256_a == sha256_b)
    if n == 0:
        return AttackSimilarity(0, None, 0, None, None, identical, thresholds=[IDENTICAL_FILE] if identical else [])
    top_a, top_b = proba_a.argmax(axis=1), proba_b.argmax(axis=1)
    same_top = float(np.mean(top_a == top_b))
    both_wrong, same_wrong, acc_a, acc_b = 0, None, None, None
    if true_cells is not None:
        truth = np.asarray(true_cells) - 1
        wrong = (top_a != truth) & (top_b != truth)
        both_wrong = int(wrong.sum())
        if both_wrong:
            same_wrong = float(np.mean(top_a[wrong] == top_b[wrong]))
        acc_a, acc_b = float(np.mean(top_a == truth)), float(np.mean(top_b == truth))
    correlation = _pearson(proba_a.ravel(), proba_b.ravel())
    found = AttackSimilarity(n, same_top, both_wrong, same_wrong, correlation, identical, acc_a, acc_b)
    found.thresholds = attack_thresholds(found)
    return found


def attack_thresholds(s: AttackSimilarity) -> list[str]:
    """The thresholds an attack pair crossed, most telling first."""
    crossed = []
    if s.identical_file:
        crossed.append(IDENTICAL_FILE)
    counted = s.same_wrong_guess is not None and s.both_wrong >= MIN_BOTH_WRONG
    if counted and s.same_wrong_guess >= SAME_WRONG_GUESS_THRESHOLD:
        crossed.append(SAME_WRONG_GUESSES)
    if s.correlation is not None and s.correlation >= CORRELATION_THRESHOLD:
        crossed.append(CORRELATED_PROBABILITIES)
    if s.same_top_guess is not None and s.same_top_guess >= SAME_TOP_GUESS_THRESHOLD:
        crossed.append(SAME_TOP_GUESSES)
    return crossed


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a - a.mean(), b - b.mean()
    scale = np.sqrt((a * a).sum() * (b * b).sum())
    if not np.isfinite(scale) or scale == 0:
        return None
    return float(np.clip((a * b).sum() / scale, -1.0, 1.0))


def size_sequence_hashes(capture_keys: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """One 64-bit hash per capture of its packet-size sequence (signed direction × size, in row order).

    Rows must be grouped by capture (consecutive rows with the same key form one capture, time order inside).
    Two captures get the same hash when their sequences are equal, whatever their timestamps; the hashes come
    back sorted, one per capture, duplicates kept.
    """
    keys = np.asarray(capture_keys)
    sizes = np.asarray(sizes, dtype=np.int64)
    if len(keys) == 0:
        return np.empty(0, dtype=np.uint64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    lengths = np.diff(np.r_[starts, len(keys)])
    position = np.arange(len(keys)) - np.repeat(starts, lengths)
    import pandas as pd  # here: every process imports this module, only the similarity view hashes (34 MB)

    mixed = pd.util.hash_array((sizes << np.int64(21)) ^ position.astype(np.int64))
    with np.errstate(over="ignore"):
        sums = np.add.reduceat(mixed, starts)
    hashes = pd.util.hash_array(sums) ^ pd.util.hash_array(lengths.astype(np.int64))
    return np.sort(hashes)


def compare_defences(
    hashes_a: np.ndarray | None,
    hashes_b: np.ndarray | None,
    *,
    sha256_a: str | None = None,
    sha256_b: str | None = None,
) -> DefenceSimilarity:
    """Compare two defences by their uploads' SHA-256 and their captures' size-sequence hashes (None when a
    defence's traces could not be read: only the SHA-256 are compared)."""
    identical = bool(sha256_a and sha256_a == sha256_b)
    if hashes_a is None or hashes_b is None:
        sizes = [0 if h is None else len(h) for h in (hashes_a, hashes_b)]
        found = DefenceSimilarity(identical, *sizes, None, None)
    else:
        hashes_a, hashes_b = np.asarray(hashes_a, dtype=np.uint64), np.asarray(hashes_b, dtype=np.uint64)
        small, large = (hashes_a, hashes_b) if len(hashes_a) <= len(hashes_b) else (hashes_b, hashes_a)
        shared = int(np.isin(small, large).sum())
        found = DefenceSimilarity(
            identical, len(hashes_a), len(hashes_b), shared, shared / len(small) if len(small) else None
        )
    if identical:
        found.thresholds.append(IDENTICAL_FILE)
    if found.shared_share is not None and found.shared_share >= SHARED_TRACES_THRESHOLD:
        found.thresholds.append(SHARED_TRACES)
    return found


def suspicion_key(similarity: AttackSimilarity | DefenceSimilarity) -> tuple:
    """Sort key, most suspicious first: identical files, then more thresholds crossed, then the strongest figure
    (the wrong-guess agreement of attacks, the shared-trace share of defences), then correlation."""
    if isinstance(similarity, DefenceSimilarity):
        main, second = similarity.shared_share or 0.0, 0.0
    else:
        counted = similarity.both_wrong >= MIN_BOTH_WRONG
        main = (similarity.same_wrong_guess or 0.0) if counted else (similarity.same_top_guess or 0.0)
        second = similarity.correlation or 0.0
    return (not similarity.identical_file, -len(similarity.thresholds), -main, -second)
