"""The public subset of a test set: drawn with the split, stratified, written only to the verification set, and
scored apart from the whole set."""

import zipfile

import numpy as np
import pandas as pd
import pytest

from app.evaluation.attack import proba_columns, score_attack
from app.evaluation.defence.split import draw_public, public_size

NB_CLASSES = 10


@pytest.mark.parametrize(
    ("nb_test", "fraction", "expected"), [(300, 1 / 3, 100), (6, 1 / 3, 2), (10, 0.01, 1), (5, 1.0, 5), (0, 0.5, 0)]
)
def test_public_size_is_the_rounded_fraction_and_never_empty(nb_test, fraction, expected):
    assert public_size(nb_test, fraction) == expected


def test_a_third_of_three_captures_per_cell_is_one_per_cell():
    cells = np.repeat(np.arange(1, 101), 3)
    masks = [draw_public(cells, 1 / 3, np.random.default_rng(seed)) for seed in range(3)]
    for mask in masks:
        assert mask.sum() == 100
        assert set(np.bincount(cells[mask])[1:]) == {1}
    assert not np.array_equal(masks[0], masks[1]), "which capture of a cell is public is drawn"


def test_an_uneven_public_subset_is_as_even_as_possible():
    cells = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    for seed in range(5):
        mask = draw_public(cells, 0.5, np.random.default_rng(seed))
        assert mask.sum() == 6
        assert sorted(np.bincount(cells[mask], minlength=5)[1:]) == [1, 1, 2, 2]


def test_cells_with_few_test_captures_leave_their_share_to_others():
    cells = np.array([1, 2, 2, 2, 2, 2])
    mask = draw_public(cells, 2 / 3, np.random.default_rng(0))
    assert mask.sum() == 4 and mask[0]  # cell 1 gives its only capture, cell 2 the rest


def _zip(path, frame):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.stem + ".csv", frame.to_csv(index=False))
    return path


def _attack_frame(team_id, ids, predicted):
    proba = np.zeros((len(ids), NB_CLASSES))
    proba[np.arange(len(ids)), predicted - 1] = 1.0
    frame = pd.DataFrame(proba, columns=proba_columns(NB_CLASSES))
    frame.insert(0, "capture_id", ids)
    frame.insert(0, "team_id", team_id)
    return frame


def _public_third(tmp_path, right_on_public: bool):
    """Score an attack right on one side of a 30-capture set (10 public captures, one per cell) and wrong on the
    other (the next cell)."""
    ids = np.arange(500, 530)
    cells = np.tile(np.arange(1, NB_CLASSES + 1), 3)
    public = np.zeros(30, dtype=int)
    public[:NB_CLASSES] = 1  # one capture per cell
    verification = _zip(tmp_path / "verif.zip", pd.DataFrame({"capture_id": ids, "cell_id": cells, "public": public}))
    predicted = np.where((public == 1) == right_on_public, cells, cells % NB_CLASSES + 1)
    upload = _zip(tmp_path / "attack.zip", _attack_frame(4, ids, predicted))
    return score_attack(upload, {4: verification}, nb_classes=NB_CLASSES, max_uncompressed_bytes=10**8)


def test_public_scores_count_only_the_public_captures_and_final_ones_only_the_private(tmp_path):
    result = _public_third(tmp_path, right_on_public=True)
    public, final = result.public_scores[4], result.scores[4]
    assert public.accuracy == 1.0 and public.nb_captures == 10 and public.subset == "public"
    # The public captures a student can probe do not count in the final score: wrong on every private one.
    assert final.accuracy == 0.0 and final.top5_accuracy < 1.0 and final.nb_captures == 20
    assert final.subset == "private" and public.roc_auc == 1.0 and final.roc_auc < 0.5
    # Intervals are on the same captures: a score right on every counted capture has no spread.
    assert public.intervals["accuracy"]["low"] == public.intervals["accuracy"]["high"] == 1.0
    assert final.intervals["accuracy"]["low"] == final.intervals["accuracy"]["high"] == 0.0
    assert result.to_dict()["scores"]["4"]["subset"] == "private" and "public_scores" in result.to_dict()


def test_an_attack_right_on_the_private_captures_only_scores_perfectly_in_the_end(tmp_path):
    result = _public_third(tmp_path, right_on_public=False)
    assert result.public_scores[4].accuracy == 0.0
    assert result.scores[4].accuracy == 1.0 and result.scores[4].roc_auc == 1.0 and result.scores[4].nb_captures == 20


def test_a_verification_set_with_every_capture_public_is_a_platform_fault(tmp_path):
    ids, cells = np.arange(10), np.arange(1, 11)
    frame = pd.DataFrame({"capture_id": ids, "cell_id": cells, "public": 1})
    verification = _zip(tmp_path / "verif.zip", frame)
    upload = _zip(tmp_path / "attack.zip", _attack_frame(4, ids, cells))
    with pytest.raises(ValueError, match="no private capture"):
        score_attack(upload, {4: verification}, nb_classes=NB_CLASSES, max_uncompressed_bytes=10**8)


def test_a_verification_set_without_public_column_has_no_public_scores(tmp_path):
    ids, cells = np.arange(10), np.arange(1, 11)
    verification = _zip(tmp_path / "verif.zip", pd.DataFrame({"capture_id": ids, "cell_id": cells}))
    upload = _zip(tmp_path / "attack.zip", _attack_frame(4, ids, cells))
    result = score_attack(upload, {4: verification}, nb_classes=NB_CLASSES, max_uncompressed_bytes=10**8)
    assert result.scores[4].accuracy == 1.0 and result.public_scores == {}
    assert result.scores[4].subset == "all" and result.scores[4].nb_captures == 10
