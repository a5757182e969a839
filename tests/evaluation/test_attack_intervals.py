"""Every scored attack carries 95 % bootstrap intervals around its scores, the same for the same upload."""

import numpy as np
import pandas as pd

from app.evaluation.attack import proba_columns, score_attack
from tests.evaluation.test_attack import CAP, NB_CLASSES, make_verification, upload


def _noisy_upload(tmp_path, ids, cells, seed):
    rng = np.random.default_rng(seed)
    proba = rng.random((len(ids), NB_CLASSES))
    proba[np.arange(len(ids)), cells - 1] += rng.random(len(ids)) * 2  # better than chance, not perfect
    proba /= proba.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(proba, columns=proba_columns(NB_CLASSES))
    frame.insert(0, "capture_id", ids)
    frame.insert(0, "team_id", 4)
    return upload(tmp_path, frame, f"noisy-{seed}.zip")


def test_scores_come_with_intervals_around_them_reproducibly(tmp_path):
    ids, cells = np.arange(200), np.tile(np.arange(1, NB_CLASSES + 1), 20)
    verification = {4: make_verification(tmp_path, 4, ids, cells)}
    path = _noisy_upload(tmp_path, ids, cells, seed=1)
    first = score_attack(path, verification, nb_classes=NB_CLASSES, max_uncompressed_bytes=CAP).scores[4]
    again = score_attack(path, verification, nb_classes=NB_CLASSES, max_uncompressed_bytes=CAP).scores[4]
    intervals = first.intervals
    assert intervals == again.intervals  # seeded: the same upload always shows the same ±
    assert intervals["level"] == 0.95 and intervals["nb_resamples"] == 1000
    for name in ("accuracy", "top5_accuracy", "roc_auc"):
        interval = intervals[name]
        assert interval["estimate"] == getattr(first, name)
        assert interval["low"] < interval["estimate"] < interval["high"]
    # 200 captures: the accuracy's 95 % interval spans a few points either side, not the whole range.
    assert 0.02 < intervals["accuracy"]["high"] - intervals["accuracy"]["low"] < 0.3
    assert first.to_dict()["intervals"] == intervals
