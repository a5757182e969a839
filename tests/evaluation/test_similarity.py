"""Similarity of uploads: planted copies are flagged, an honest pair is not.

The attackers are real: classifiers trained on the course sample (3,603 captures of 100 cells), 3 captures per
cell held out as the target's test set (300 captures), with the features of the course's example script.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.evaluation import similarity as sim

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"
NB_CELLS = 100


def _example_script():
    spec = importlib.util.spec_from_file_location(
        "srs_example_fp", ROOT / "attack_defence_test_scripts" / "fingerprinting.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def attackers():
    """Probabilities of independent attackers on the same 300 held-out captures, and the true cells."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    fp = _example_script()
    frame = pd.read_csv(SAMPLE, compression="zip")
    captures = fp.group_captures(frame, ["cell_id", "rep"])
    cells = captures.keys["cell_id"].to_numpy()
    kfp, cumul = fp.kfp_features(captures), fp.cumul_features(captures)
    rng = np.random.default_rng(0)
    test = np.concatenate([rng.choice(np.flatnonzero(cells == c), 3, replace=False) for c in np.unique(cells)])
    train = np.setdiff1d(np.arange(len(cells)), test)

    def proba(classifier, features):
        classifier.fit(features[train], cells[train])
        out = np.zeros((len(test), NB_CELLS))
        out[:, classifier.classes_ - 1] = classifier.predict_proba(features[test])
        return out

    return {
        "timing": proba(ExtraTreesClassifier(60, random_state=1, n_jobs=1), kfp),  # k-FP features, extra trees
        "cumulative": proba(RandomForestClassifier(60, random_state=2, n_jobs=1), cumul),  # CUMUL, random forest
        "truth": cells[test],
    }


def noisy_copy(proba: np.ndarray, scale: float, seed: int = 7) -> np.ndarray:
    noisy = np.clip(proba + np.random.default_rng(seed).normal(0, scale, proba.shape), 0, None)
    return noisy / noisy.sum(axis=1, keepdims=True)


def test_an_honest_pair_stays_below_every_threshold(attackers):
    found = sim.compare_attacks(attackers["timing"], attackers["cumulative"], attackers["truth"])
    assert found.accuracy_a > 0.6 and found.accuracy_b > 0.6  # realistic attackers, not noise
    assert found.both_wrong >= sim.MIN_BOTH_WRONG
    assert found.same_wrong_guess < sim.SAME_WRONG_GUESS_THRESHOLD / 2
    assert found.correlation < sim.CORRELATION_THRESHOLD
    assert found.thresholds == []


def test_a_copy_is_flagged(attackers):
    found = sim.compare_attacks(attackers["timing"], attackers["timing"].copy(), attackers["truth"])
    assert found.same_top_guess == 1.0 and found.same_wrong_guess == 1.0
    assert found.correlation == pytest.approx(1.0)
    assert sim.SAME_WRONG_GUESSES in found.thresholds and sim.CORRELATED_PROBABILITIES in found.thresholds


@pytest.mark.parametrize("scale", [0.01, 0.02])
def test_a_copy_with_noise_is_flagged_by_its_wrong_guesses(attackers, scale):
    """Noise that keeps the copier's accuracy within a few points of the original's still leaves its mistakes."""
    copied = noisy_copy(attackers["timing"], scale)
    found = sim.compare_attacks(attackers["timing"], copied, attackers["truth"])
    assert abs(found.accuracy_a - found.accuracy_b) < 0.05
    assert found.same_wrong_guess >= sim.SAME_WRONG_GUESS_THRESHOLD
    assert sim.SAME_WRONG_GUESSES in found.thresholds


def test_byte_identical_files_are_flagged_first(attackers):
    copy = sim.compare_attacks(
        attackers["timing"], attackers["timing"], attackers["truth"], sha256_a="ab", sha256_b="ab"
    )
    noisy = sim.compare_attacks(attackers["timing"], noisy_copy(attackers["timing"], 0.02), attackers["truth"])
    honest = sim.compare_attacks(attackers["timing"], attackers["cumulative"], attackers["truth"])
    assert copy.thresholds[0] == sim.IDENTICAL_FILE
    ranked = sorted([honest, noisy, copy], key=sim.suspicion_key)
    assert ranked == [copy, noisy, honest]


def test_align_maps_both_files_to_the_captures_they_share():
    ids_a, proba_a = np.array([5, 1, 9]), np.eye(3)
    ids_b, proba_b = np.array([9, 5, 7]), np.eye(3)[::-1]
    common, rows_a, rows_b = sim.align(ids_a, proba_a, ids_b, proba_b)
    assert common.tolist() == [5, 9]
    assert rows_a.tolist() == [proba_a[0].tolist(), proba_a[2].tolist()]
    assert rows_b.tolist() == [proba_b[1].tolist(), proba_b[0].tolist()]


def test_too_few_shared_mistakes_say_nothing():
    truth = np.arange(1, 21)
    proba = np.eye(20)[truth - 1]
    proba[:3] = np.eye(20)[[5, 6, 7]]  # three identical mistakes
    found = sim.compare_attacks(proba, proba.copy() * 0.9 + 0.005, truth)
    assert found.same_wrong_guess == 1.0 and found.both_wrong == 3
    assert sim.SAME_WRONG_GUESSES not in found.thresholds


def _captures(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by capture: (capture key of each row, signed packet size)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(50, 300, n)
    keys = np.repeat(np.arange(n), lengths)
    sizes = rng.choice([-1500, -576, 576, 1500], size=len(keys)) // rng.integers(1, 4, len(keys))
    return keys, sizes


def test_a_defence_uploaded_twice_is_flagged():
    keys, sizes = _captures(1)
    hashes = sim.size_sequence_hashes(keys, sizes)
    found = sim.compare_defences(hashes, hashes, sha256_a="f" * 64, sha256_b="f" * 64)
    assert found.identical_file and found.shared_share == 1.0
    assert found.thresholds == [sim.IDENTICAL_FILE, sim.SHARED_TRACES]


def test_a_near_copy_of_a_defence_is_flagged_and_an_independent_one_is_not():
    keys, sizes = _captures(1)
    own = sim.size_sequence_hashes(keys, sizes)
    # Half the captures copied (their timestamps would differ: sizes are all that is compared), half captured anew.
    other_keys, other_sizes = _captures(2)
    half = keys < 100
    near = sim.size_sequence_hashes(
        np.concatenate([keys[half], other_keys[other_keys >= 100]]),
        np.concatenate([sizes[half], other_sizes[other_keys >= 100]]),
    )
    found = sim.compare_defences(own, near, sha256_a="a" * 64, sha256_b="b" * 64)
    assert not found.identical_file and found.shared_share == pytest.approx(0.5)
    assert found.thresholds == [sim.SHARED_TRACES]
    independent = sim.compare_defences(own, sim.size_sequence_hashes(other_keys, other_sizes))
    assert independent.shared_traces == 0 and independent.thresholds == []


def test_size_sequence_hashes_see_order_and_length():
    keys = np.array([0, 0, 1, 1, 2, 2, 2])
    sizes = np.array([100, -200, -200, 100, 100, -200, 5])
    hashes = sim.size_sequence_hashes(keys, sizes)
    assert len(set(hashes.tolist())) == 3
    again = sim.size_sequence_hashes(np.array([7, 7]), np.array([100, -200]))
    assert again[0] in hashes


def test_identical_uploads_are_flagged_even_when_their_traces_were_not_read():
    found = sim.compare_defences(None, np.arange(5, dtype=np.uint64), sha256_a="c" * 64, sha256_b="c" * 64)
    assert found.thresholds == [sim.IDENTICAL_FILE] and found.shared_traces is None
    assert sim.compare_defences(None, None, sha256_a="c" * 64, sha256_b="d" * 64).thresholds == []
