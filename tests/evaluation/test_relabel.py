"""One attacker's copy of a defence's test pool: the same captures and packets under new ids, order and public
subset; one attacker's labels score nothing of another's copy."""

import zipfile

import numpy as np
import pandas as pd
import pytest

from app.evaluation.attack import proba_columns, score_attack
from app.evaluation.defence import DefenceSettings, evaluate_defence
from app.evaluation.defence.relabel import relabel_test_pool
from app.evaluation.errors import ValidationError
from tests.evaluation.test_defence import valid_rows, write_upload

SETTINGS = DefenceSettings(
    nb_classes=4, mean_nb_rep_per_class=6, deviation_nb_rep_per_class=1, rows_per_capture=2, nb_traces_to_classify=8
)


@pytest.fixture
def pool(tmp_path):
    """The canonical sets written when the defence was accepted."""
    upload = write_upload(tmp_path / "d.zip", valid_rows({cell: 6 for cell in range(1, 5)}))
    (tmp_path / "pool").mkdir()
    result = evaluate_defence(upload, tmp_path / "pool", team_id=5, settings=SETTINGS, seed=1)
    return result.test_path, result.verification_path


def _relabel(tmp_path, pool, seed, name=None):
    out = tmp_path / (name or f"attacker{seed}")
    out.mkdir()
    return relabel_test_pool(*pool, out, team_id=5, seed=seed, public_fraction=1 / 3)


def _captures(test: pd.DataFrame) -> dict[int, tuple]:
    """Packet-size sequence of every capture, by id."""
    return {capture_id: tuple(rows.direction_size) for capture_id, rows in test.groupby("capture_id", sort=False)}


def _perfect_attack(tmp_path, verification: pd.DataFrame, name: str):
    proba = np.zeros((len(verification), 4))
    proba[np.arange(len(verification)), verification.cell_id.to_numpy() - 1] = 1.0
    frame = pd.DataFrame(proba, columns=proba_columns(4))
    frame.insert(0, "capture_id", verification.capture_id.to_numpy())
    frame.insert(0, "team_id", 5)
    path = tmp_path / name
    frame.to_csv(path, index=False, compression={"method": "zip", "archive_name": "attack.csv"})
    return path


def test_each_attacker_gets_the_same_captures_under_its_own_ids_and_order(tmp_path, pool):
    canonical = pd.read_csv(pool[0])
    labels = pd.read_csv(pool[1]).set_index("capture_id").cell_id
    first, second = _relabel(tmp_path, pool, 11), _relabel(tmp_path, pool, 12)
    one, two = pd.read_csv(first.test_path), pd.read_csv(second.test_path)
    v_one, v_two = pd.read_csv(first.verification_path), pd.read_csv(second.verification_path)
    assert first.nb_test_captures == second.nb_test_captures == 8
    assert not set(one.capture_id) & set(two.capture_id) & set(canonical.capture_id), "ids are the attacker's own"
    assert not set(one.capture_id) & set(two.capture_id)
    # The file layout students' scripts read: captures in ascending id, rows of a capture in time order.
    ids_in_file = one.capture_id.drop_duplicates().tolist()
    assert ids_in_file == sorted(ids_in_file) and one.capture_id.is_monotonic_increasing
    assert all(rows.timestamp.is_monotonic_increasing for _, rows in one.groupby("capture_id"))
    assert list(one.columns) == ["capture_id", "direction_size", "timestamp"]
    # Every capture is a pool capture, packet for packet, and keeps its label.
    pooled = _captures(canonical)
    for test, verification in ((one, v_one), (two, v_two)):
        mapped = verification.set_index("capture_id").pool_capture_id
        assert {pooled[mapped[i]] for i in test.capture_id.unique()} == set(pooled.values())
        assert all(_captures(test)[i] == pooled[mapped[i]] for i in test.capture_id.unique())
        assert (verification.cell_id.to_numpy() == labels[verification.pool_capture_id].to_numpy()).all()
        assert verification.public.sum() == 3  # round(8 / 3), stratified by cell
    assert pd.read_csv(first.test_path).equals(pd.read_csv(_relabel(tmp_path, pool, 11, "again").test_path))


def test_packet_rows_are_copied_byte_for_byte(tmp_path, pool):
    sets = _relabel(tmp_path, pool, 3)
    with zipfile.ZipFile(pool[0]) as archive:
        canonical = archive.read(archive.namelist()[0]).decode().splitlines()[1:]
    with zipfile.ZipFile(sets.test_path) as archive:
        relabelled = archive.read(archive.namelist()[0]).decode().splitlines()[1:]
    assert sorted(line.split(",", 1)[1] for line in canonical) == sorted(line.split(",", 1)[1] for line in relabelled)


def test_one_attackers_labels_do_not_score_anothers_copy(tmp_path, pool):
    first, second = _relabel(tmp_path, pool, 21), _relabel(tmp_path, pool, 22)
    learned = _perfect_attack(tmp_path, pd.read_csv(first.verification_path), "learned.zip")
    own = score_attack(learned, {5: first.verification_path}, nb_classes=4, max_uncompressed_bytes=10**8)
    assert own.public_scores[5].accuracy == 1.0
    with pytest.raises(ValidationError) as refused:
        score_attack(learned, {5: second.verification_path}, nb_classes=4, max_uncompressed_bytes=10**8)
    assert "capture" in refused.value.message.lower()


def test_sets_that_disagree_are_refused(tmp_path, pool):
    other = tmp_path / "other"
    other.mkdir()
    upload = write_upload(tmp_path / "e.zip", valid_rows({cell: 6 for cell in range(1, 5)}))
    stranger = evaluate_defence(upload, other, team_id=5, settings=SETTINGS, seed=2)
    with pytest.raises(ValueError, match="does not label"):
        relabel_test_pool(pool[0], stranger.verification_path, tmp_path, team_id=5, seed=1, public_fraction=0.3)
