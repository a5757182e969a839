"""A fresh split of an accepted defence per round: new seed, new capture ids, new public subset."""

import numpy as np
import pandas as pd
import pytest

from app.evaluation.attack import proba_columns, score_attack
from app.evaluation.defence import DefenceSettings, resplit_defence
from app.evaluation.errors import ValidationError
from tests.evaluation.test_defence import valid_rows, write_upload

SETTINGS = DefenceSettings(
    nb_classes=4, mean_nb_rep_per_class=6, deviation_nb_rep_per_class=1, rows_per_capture=2, nb_traces_to_classify=8
)


def _split(tmp_path, upload, seed):
    out = tmp_path / f"seed{seed}"
    out.mkdir()
    return resplit_defence(upload, out, team_id=5, settings=SETTINGS, seed=seed)


def _perfect_attack(tmp_path, verification: pd.DataFrame, name: str):
    proba = np.zeros((len(verification), 4))
    proba[np.arange(len(verification)), verification.cell_id.to_numpy() - 1] = 1.0
    frame = pd.DataFrame(proba, columns=proba_columns(4))
    frame.insert(0, "capture_id", verification.capture_id.to_numpy())
    frame.insert(0, "team_id", 5)
    path = tmp_path / name
    frame.to_csv(path, index=False, compression={"method": "zip", "archive_name": "attack.csv"})
    return path


def test_two_rounds_get_different_ids_and_round_one_labels_do_not_score_round_two(tmp_path):
    upload = write_upload(tmp_path / "d.zip", valid_rows({cell: 6 for cell in range(1, 5)}))
    first, second = _split(tmp_path, upload, 1), _split(tmp_path, upload, 2)
    one, two = (pd.read_csv(s.verification_path) for s in (first, second))
    assert first.seed != second.seed and len(one) == len(two) == 8
    assert not set(one.capture_id) & set(two.capture_id), "no test capture id carries over"
    assert set(pd.read_csv(second.test_path).capture_id) == set(two.capture_id)
    assert two.public.sum() == 3  # round(8 / 3)
    # Round 1's labels, perfect there, cannot even be uploaded against round 2's captures.
    learned = _perfect_attack(tmp_path, one, "learned.zip")
    assert (
        score_attack(learned, {5: first.verification_path}, nb_classes=4, max_uncompressed_bytes=10**8)
        .scores[5]
        .accuracy
        == 1.0
    )
    with pytest.raises(ValidationError) as refused:
        score_attack(learned, {5: second.verification_path}, nb_classes=4, max_uncompressed_bytes=10**8)
    assert "capture" in refused.value.message.lower()
