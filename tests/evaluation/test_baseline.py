"""The baseline attack: features with known answers on small traces, and the attack on the sample defence."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.evaluation import features
from app.evaluation.attack import score_probabilities
from app.evaluation.baseline import run_baseline
from app.evaluation.defence import DefenceSettings, evaluate_defence
from app.evaluation.features import CaptureRows, extract_features, feature_names

SAMPLE = Path(__file__).resolve().parents[2] / "attack_defence_test_scripts" / "test_defence.csv.zip"

# One capture: out 100, in 1500, in 1500, out 50, in 600, over 1.5 s.
SIZES = np.array([100, -1500, -1500, 50, -600])
TIMES = np.array([10.0, 10.1, 10.2, 10.5, 11.5])  # features use time since the capture's first packet


def features_of(sizes, times) -> dict[str, float]:
    values = extract_features(CaptureRows(np.array(sizes), np.array(times), np.array([len(sizes)])))[0]
    return dict(zip(feature_names(), values, strict=True))


def test_counts_volumes_and_duration():
    f = features_of(SIZES, TIMES)
    assert (f["packets"], f["packets_in"], f["packets_out"]) == (5, 3, 2)
    assert (f["bytes_in"], f["bytes_out"]) == (3600, 150)
    assert f["share_out"] == pytest.approx(0.4)
    assert f["duration"] == pytest.approx(1.5)
    assert (f["size_in_min"], f["size_in_max"], f["size_in_q50"]) == (600, 1500, 1500)
    assert f["size_out_mean"] == pytest.approx(75)
    # Histogram of incoming sizes: one in [600, 1100), two in [1400, ...).
    assert f["size_in_from_600"] == pytest.approx(1 / 3) and f["size_in_from_1400"] == pytest.approx(2 / 3)


def test_timing_features():
    f = features_of(SIZES, TIMES)
    assert f["gap_max"] == pytest.approx(1.0)
    assert f["gap_mean"] == pytest.approx(1.5 / 4)
    assert f["gap_q50"] == pytest.approx(0.2)  # gaps 0.1, 0.1, 0.3, 1.0
    assert f["gap_out_mean"] == pytest.approx(0.5)  # outgoing at 0 and 0.5
    assert f["time_in_last"] == pytest.approx(1.5)
    # Seconds 0 and 1 hold 4 and 1 packets.
    assert (f["per_second_min"], f["per_second_max"], f["per_second_mean"]) == (1, 4, 2.5)
    assert f["per_second_std"] == pytest.approx(1.5)
    # Seconds 0, 1, 2 hold 2, 0, 1 packets: the empty second counts.
    g = features_of([100, -100, 100], [0.0, 0.1, 2.5])
    assert (g["per_second_min"], g["per_second_max"], g["per_second_mean"]) == (0, 2, 1)
    assert g["busy_seconds"] == pytest.approx(2 / 3)
    # A capture of several hours costs no more than its packets.
    h = features_of([100, -100], [0.0, 1e7])
    assert (h["per_second_max"], h["per_second_mean"]) == (1, pytest.approx(2 / (1e7 + 1)))


def test_bursts_and_ordering():
    f = features_of(SIZES, TIMES)
    assert f["bursts"] == 4  # out | in in | out | in
    assert (f["burst_in_packets_count"], f["burst_in_packets_max"]) == (2, 2)
    assert f["burst_in_packets_mean"] == pytest.approx(1.5)
    assert f["burst_in_bytes_max"] == 3000
    assert f["position_out_mean"] == pytest.approx(1.5)  # packets 0 and 3
    assert (f["first30_out"], f["first30_in"]) == (2, 3)
    assert [f[f"first_size_{i}"] for i in range(6)] == [100, -1500, -1500, 50, -600, 0]


def test_cumul_curve():
    f = features_of(SIZES, TIMES)
    # Cumulative absolute sizes 100, 1600, 3100, 3150, 3750; signed 100, -1400, -2900, -2850, -3450.
    assert f["cumul_100"] == pytest.approx(-3450)
    # Half way (1875 bytes) lies between 1600 (-1400) and 3100 (-2900): -1400 - 275.
    assert f["cumul_50"] == pytest.approx(-1675)
    # 2 % (75 bytes) lies on the first packet, from (0, 0) to (100, 100).
    assert f["cumul_2"] == pytest.approx(75)


def test_features_of_a_capture_do_not_depend_on_the_others():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 60, size=25)
    sizes = rng.choice([-1500, -600, -52, 52, 600, 1500], size=lengths.sum()) * rng.integers(1, 3, size=lengths.sum())
    times = np.concatenate([np.sort(rng.exponential(3.0, size=n)) + rng.uniform(0, 100) for n in lengths])
    together = extract_features(CaptureRows(sizes, times, lengths))
    start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    alone = np.vstack(
        [
            extract_features(CaptureRows(sizes[s : s + n], times[s : s + n], np.array([n])))
            for s, n in zip(start, lengths, strict=True)
        ]
    )
    np.testing.assert_allclose(together, alone, rtol=1e-9, atol=1e-6)
    # And the quartiles agree with numpy's on each capture.
    q50 = feature_names().index("gap_q50")
    for s, n, row in zip(start, lengths, together, strict=True):
        expected = np.quantile(np.diff(times[s : s + n]), 0.5) if n > 1 else 0.0
        assert row[q50] == pytest.approx(expected, abs=1e-9)


def test_features_computed_in_slices_equal_the_whole_sets(monkeypatch):
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 40, size=30)
    lengths[[0, 7, 29]] = 120  # longer than a slice: a capture is never split
    sizes = rng.choice([-1500, -600, 52, 600], size=lengths.sum())
    times = np.concatenate([np.sort(rng.exponential(2.0, size=n)) for n in lengths])
    rows = CaptureRows(sizes, times, lengths)
    whole = extract_features(rows)
    monkeypatch.setattr(features, "CHUNK_ROWS", 50)
    sliced = extract_features(rows)
    assert sliced.shape == whole.shape == (30, len(feature_names()))
    np.testing.assert_allclose(sliced, whole, rtol=1e-9, atol=1e-6)


def test_a_capture_without_packets_is_refused():
    with pytest.raises(ValueError, match="at least one packet"):
        extract_features(CaptureRows(np.array([1]), np.array([0.0]), np.array([1, 0])))


def synthetic_sets(seed: int, nb_classes: int = 6, reps: int = 12, nb_test: int = 18):
    """Frames in the platform's layout: each class has its own packet-size pattern plus noise."""
    rng = np.random.default_rng(seed)
    train, test, labels = [], [], []
    capture_id = 1000
    for cell in range(1, nb_classes + 1):
        for rep in range(reps + nb_test // nb_classes):
            n = int(rng.integers(20 + 10 * cell, 30 + 10 * cell))
            sizes = np.where(rng.random(n) < 0.2 + 0.1 * cell, -(400 + 150 * cell), 80) + rng.integers(0, 30, n)
            times = np.cumsum(rng.exponential(0.01 * cell, n))
            if rep < reps:
                train.append(pd.DataFrame({"cell_id": cell, "rep": rep, "direction_size": sizes, "timestamp": times}))
            else:
                capture_id += int(rng.integers(1, 50))
                test.append(pd.DataFrame({"capture_id": capture_id, "direction_size": sizes, "timestamp": times}))
                labels.append((capture_id, cell))
    verification = pd.DataFrame(labels, columns=["capture_id", "cell_id"])
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True), verification


def test_the_baseline_recognises_distinct_classes_and_is_seeded():
    train, test, verification = synthetic_sets(1)
    result = run_baseline(train, test, verification, nb_classes=6, seed=7, nb_trees=30)
    assert result.score.accuracy == 1.0 and result.score.roc_auc == 1.0
    assert result.score.nb_captures == len(verification)
    again = run_baseline(train, test, verification, nb_classes=6, seed=7, nb_trees=30)
    np.testing.assert_array_equal(result.proba, again.proba)
    # The score is the students' scorer applied to the probabilities.
    assert result.score == score_probabilities(
        0, result.proba, verification.sort_values("capture_id")["cell_id"].to_numpy()
    )


def test_row_order_and_label_order_do_not_change_the_result():
    train, test, verification = synthetic_sets(2, reps=4)
    result = run_baseline(train, test, verification, nb_classes=6, seed=1, nb_trees=20)
    shuffled = run_baseline(
        train.sample(frac=1, random_state=1),
        test.sample(frac=1, random_state=2),
        dict(zip(verification.capture_id[::-1], verification.cell_id[::-1], strict=True)),
        nb_classes=6,
        seed=1,
        nb_trees=20,
    )
    np.testing.assert_array_equal(result.proba, shuffled.proba)


def test_labels_of_other_captures_are_refused():
    train, test, verification = synthetic_sets(3, reps=3)
    wrong = verification.assign(capture_id=verification.capture_id + 1)
    with pytest.raises(ValueError, match="not for the same capture ids"):
        run_baseline(train, test, wrong, nb_classes=6, seed=1, nb_trees=5)
    with pytest.raises(ValueError, match="outside 1..5"):
        run_baseline(train, test, verification, nb_classes=5, seed=1, nb_trees=5)


@pytest.fixture(scope="module")
def sample_sets(tmp_path_factory):
    """The sample defence split and written exactly as the platform does for an upload."""
    out = tmp_path_factory.mktemp("sample_sets")
    result = evaluate_defence(SAMPLE, out, team_id=1, settings=DefenceSettings(), seed=1)
    return result.train_path, result.test_path, result.verification_path


def test_the_baseline_reaches_80_percent_on_the_undefended_sample(sample_sets):
    train, test, verification = sample_sets
    result = run_baseline(train, test, verification, nb_classes=100, seed=1)
    assert result.score.nb_captures == 300
    assert result.score.accuracy >= 0.80
    assert result.score.roc_auc >= 0.97
    assert result.to_dict()["nb_train_captures"] == result.nb_train_captures > 3000
    interval = result.to_dict()["intervals"]["accuracy"]
    assert interval["low"] < result.score.accuracy < interval["high"]
    assert interval["estimate"] == result.score.accuracy
