"""Scoring of attack uploads: hostile files are refused with a message, honest ones are scored."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from app.evaluation.attack import AttackResult, check_attack, macro_ovr_auc, proba_columns, score_attack
from app.evaluation.errors import ValidationError

NB_CLASSES = 10
CAP = 50_000_000


def make_zip(path, text, member="attack.csv"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return path


def make_verification(tmp_path, team_id, capture_ids, cells):
    frame = pd.DataFrame({"capture_id": capture_ids, "cell_id": cells})
    return make_zip(tmp_path / f"verif_{team_id}.zip", frame.to_csv(index=False), "verif.csv")


@pytest.fixture
def targets(tmp_path):
    """Two targets: team 3 with captures 100..119, team 7 with captures 5..24 (every class twice)."""
    cells = np.tile(np.arange(1, NB_CLASSES + 1), 2)
    return {
        3: (np.arange(100, 120), cells),
        7: (np.arange(5, 25), cells[::-1].copy()),
    }


@pytest.fixture
def verification_paths(tmp_path, targets):
    return {team: make_verification(tmp_path, team, ids, cells) for team, (ids, cells) in targets.items()}


def perfect_frame(targets, teams=None, nb_classes=NB_CLASSES):
    frames = []
    for team in teams or targets:
        ids, cells = targets[team]
        proba = np.zeros((len(ids), nb_classes))
        proba[np.arange(len(ids)), cells - 1] = 1.0
        frame = pd.DataFrame(proba, columns=proba_columns(nb_classes))
        frame.insert(0, "capture_id", ids)
        frame.insert(0, "team_id", team)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def upload(tmp_path, frame, name="upload.zip"):
    return make_zip(tmp_path / name, frame.to_csv(index=False))


def score(tmp_path, frame, verification_paths, **kwargs):
    path = frame if not isinstance(frame, pd.DataFrame) else upload(tmp_path, frame)
    return score_attack(
        path, verification_paths, nb_classes=kwargs.get("nb_classes", NB_CLASSES), max_uncompressed_bytes=CAP
    )


def refused(tmp_path, frame, verification_paths):
    with pytest.raises(ValidationError) as info:
        score(tmp_path, frame, verification_paths)
    failed = {check.name: check for check in info.value.checks if not check.passed}
    return info.value, failed


def test_perfect_probabilities_score_one(tmp_path, targets, verification_paths):
    result = score(tmp_path, perfect_frame(targets), verification_paths)
    assert set(result.scores) == {3, 7}
    for team, attack in result.scores.items():
        assert attack.team_id == team
        assert attack.accuracy == 1.0
        assert attack.top5_accuracy == 1.0
        assert attack.roc_auc == 1.0
        assert attack.nb_captures == 20
    assert all(check.passed for check in result.checks)


def test_uniform_probabilities_give_auc_exactly_half(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame[proba_columns(NB_CLASSES)] = 1.0 / NB_CLASSES
    result = score(tmp_path, frame, verification_paths)
    for attack in result.scores.values():
        assert attack.roc_auc == 0.5
        # Ties go to the lowest classes: class 1 is the prediction, classes 1-5 the top five.
        assert attack.accuracy == pytest.approx(0.1)
        assert attack.top5_accuracy == pytest.approx(0.5)


def test_result_is_json_serialisable(tmp_path, targets, verification_paths):
    result = score(tmp_path, perfect_frame(targets), verification_paths)
    assert isinstance(result, AttackResult)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["scores"]["3"]["accuracy"] == 1.0
    assert {check["name"] for check in data["checks"]} >= {"columns", "types", "targets", "sum"}


def test_subset_of_targets_is_accepted(tmp_path, targets, verification_paths):
    result = score(tmp_path, perfect_frame(targets, teams=[7]), verification_paths)
    assert set(result.scores) == {7}


def test_column_and_row_order_are_free(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    rng = np.random.default_rng(0)
    columns = list(frame.columns)
    rng.shuffle(columns)
    frame = frame[columns].sample(frac=1.0, random_state=1)
    result = score(tmp_path, frame, verification_paths)
    assert all(attack.accuracy == 1.0 for attack in result.scores.values())


def test_scores_match_sklearn_when_every_class_is_present(tmp_path, targets, verification_paths):
    rng = np.random.default_rng(42)
    frame = perfect_frame(targets)
    proba = rng.random((len(frame), NB_CLASSES)) ** 3
    proba /= proba.sum(axis=1, keepdims=True)
    frame[proba_columns(NB_CLASSES)] = proba
    result = score(tmp_path, frame, verification_paths)
    for team, (ids, cells) in targets.items():
        rows = frame[frame.team_id == team].set_index("capture_id").loc[ids]
        p = rows[proba_columns(NB_CLASSES)].to_numpy()
        expected_auc = roc_auc_score(cells, p, multi_class="ovr", average="macro", labels=range(1, 11))
        assert result.scores[team].roc_auc == pytest.approx(expected_auc, abs=1e-12)
        assert result.scores[team].accuracy == pytest.approx(np.mean(p.argmax(axis=1) + 1 == cells))


def test_auc_skips_classes_absent_from_the_test_set():
    true = np.array([1, 1, 2, 2])  # classes 3 and 4 absent: sklearn's multiclass call would fail
    proba = np.array([[0.7, 0.1, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1], [0.1, 0.8, 0.05, 0.05]])
    assert macro_ovr_auc(proba, true) == 1.0


def test_unassigned_team_is_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame.loc[frame.team_id == 7, "team_id"] = 99
    error, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"targets"}
    assert "99" in error.message and "not among your targets" in error.message
    assert failed["targets"].count == 1
    assert failed["targets"].examples == ["team_id 99 (20 rows)"]


def test_missing_capture_ids_are_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame = frame[~frame.capture_id.isin([101, 102, 103, 104, 105, 106, 107])]
    error, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"missing_captures"}
    assert failed["missing_captures"].count == 7
    assert len(failed["missing_captures"].examples) == 5
    assert failed["missing_captures"].examples[0] == "team 3: capture_id 101"
    assert "Missing captures: 7 capture_ids of your targets" in error.message


def test_unknown_capture_ids_are_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame.loc[frame.capture_id == 100, "capture_id"] = 5000
    _, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"missing_captures", "unknown_captures"}
    assert failed["unknown_captures"].examples == ["team 3: capture_id 5000"]


def test_duplicate_capture_ids_are_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame = pd.concat([frame, frame[frame.capture_id == 10]], ignore_index=True)
    error, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"duplicated_captures"}
    assert failed["duplicated_captures"].examples == ["team 7: capture_id 10 (2 rows)"]
    assert "more than one row" in error.message


def test_nan_probabilities_are_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    text = frame.to_csv(index=False, float_format="%.17g").splitlines()
    fields = text[3].split(",")
    fields[4] = "nan"
    text[3] = ",".join(fields)
    path = make_zip(tmp_path / "nan.zip", "\n".join(text) + "\n")
    with pytest.raises(ValidationError) as info:
        score(tmp_path, path, verification_paths)
    failed = {check.name: check for check in info.value.checks if not check.passed}
    assert set(failed) == {"finite"}
    assert failed["finite"].examples == ["line 4 (team 3, capture 102): proba_class_3 = nan"]
    assert "NaN" in info.value.message


def test_empty_cells_are_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame.loc[4, "proba_class_2"] = np.nan  # pandas writes NaN as an empty cell
    error, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"types"}
    assert failed["types"].examples == ["line 6, proba_class_2: empty"]
    assert "empty cell" in error.message


def test_text_in_number_columns_is_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets).astype({"capture_id": object, "proba_class_1": object})
    frame.loc[0, "capture_id"] = "abc"
    frame.loc[2, "proba_class_1"] = "high"
    error, failed = refused(tmp_path, frame, verification_paths)
    assert failed["types"].count == 2
    assert failed["types"].examples == [
        "line 2, capture_id: 'abc' is not an integer",
        "line 4, proba_class_1: 'high' is not a number",
    ]


def test_negative_probabilities_are_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame.loc[0, ["proba_class_1", "proba_class_2"]] = [1.5, -0.5]  # still sums to 1
    error, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"range"}
    assert failed["range"].examples == ["line 2 (team 3, capture 100): proba_class_1 = 1.5"]
    assert "below 0 or above 1" in error.message


def test_unnormalised_probabilities_are_refused(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets)
    frame[proba_columns(NB_CLASSES)] *= 0.5
    frame.loc[3, proba_columns(NB_CLASSES)] = 0.1 + 1e-8  # within tolerance
    error, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"sum"}
    assert failed["sum"].count == 39
    assert failed["sum"].examples[0] == "line 2 (team 3, capture 100): sum = 0.5"
    assert "sum to 1" in error.message


def test_missing_and_unexpected_columns_are_named(tmp_path, targets, verification_paths):
    frame = perfect_frame(targets).drop(columns=["proba_class_4", "proba_class_10"])
    frame["proba_class_11"] = 0.0
    error, failed = refused(tmp_path, frame, verification_paths)
    assert set(failed) == {"columns"}
    assert "missing 2 columns: 'proba_class_4', 'proba_class_10'" in error.message
    assert "'proba_class_11'" in error.message
    assert failed["columns"].count == 3


def test_a_header_flood_is_refused_before_the_file_is_parsed(tmp_path, verification_paths):
    header = ",".join(["team_id"] * 20_000)
    path = make_zip(tmp_path / "flood.zip", header + "\n" + ",".join(["1"] * 20_000) + "\n")
    with pytest.raises(ValidationError, match="has 20000 fields, more than the 112 a header may have"):
        score(tmp_path, path, verification_paths)


def test_dataframe_index_column_gets_a_hint(tmp_path, targets, verification_paths):
    path = make_zip(tmp_path / "index.zip", perfect_frame(targets).to_csv())
    with pytest.raises(ValidationError) as info:
        score(tmp_path, path, verification_paths)
    assert "index=False" in info.value.message


def test_not_a_zip_is_refused(tmp_path, verification_paths):
    path = tmp_path / "attack.zip"
    path.write_text("team_id,capture_id\n1,2\n")
    with pytest.raises(ValidationError, match="not a zip"):
        score(tmp_path, path, verification_paths)


def test_ragged_csv_is_refused(tmp_path, verification_paths):
    path = make_zip(tmp_path / "ragged.zip", "team_id,capture_id\n1,2,3\n")
    with pytest.raises(ValidationError, match="could not be read as a CSV"):
        score(tmp_path, path, verification_paths)


def test_header_only_is_refused(tmp_path, verification_paths):
    header = ",".join(["team_id", "capture_id", *proba_columns(NB_CLASSES)])
    path = make_zip(tmp_path / "empty.zip", header + "\n")
    with pytest.raises(ValidationError, match="no rows"):
        score(tmp_path, path, verification_paths)


def test_decompression_cap_is_enforced(tmp_path, targets, verification_paths):
    path = upload(tmp_path, perfect_frame(targets))
    with pytest.raises(ValidationError, match="MB"):
        score_attack(path, verification_paths, nb_classes=NB_CLASSES, max_uncompressed_bytes=1000)


def test_realistic_upload_is_scored_right(tmp_path):
    """Three targets of 300 captures over 100 classes, written like the example attack does (its speed is
    measured by bench/bench_validate.py and bench/bench_rescore.py, not timed here)."""
    rng = np.random.default_rng(7)
    targets = {team: (rng.permutation(10_000)[:300] + 1, rng.integers(1, 101, 300)) for team in (4, 8, 15)}
    paths = {team: make_verification(tmp_path, team, ids, cells) for team, (ids, cells) in targets.items()}
    frame = perfect_frame(targets, nb_classes=100)
    noise = rng.random((len(frame), 100))
    proba = 0.5 * frame[proba_columns(100)].to_numpy() + 0.5 * noise / noise.sum(axis=1, keepdims=True)
    frame[proba_columns(100)] = proba
    path = upload(tmp_path, frame)
    result = score_attack(path, paths, nb_classes=100, max_uncompressed_bytes=CAP)
    assert sorted(result.scores) == [4, 8, 15]
    assert all(attack.accuracy == 1.0 and attack.nb_captures == 300 for attack in result.scores.values())


def test_checking_against_test_capture_ids_runs_every_check_and_leaves_pandas_and_numpy_ma_unloaded(
    tmp_path, targets, verification_paths
):
    """`srs validate attack` runs check_attack with the test sets' capture ids: the checks score_attack runs, with
    the same results, no scores, and no import of pandas or numpy.ma (a third and a tenth of the command's time on a
    student's machine)."""
    test_ids = {team: ids.tolist() for team, (ids, _) in targets.items()}
    good = upload(tmp_path, perfect_frame(targets))
    checked = check_attack(good, test_ids, nb_classes=NB_CLASSES, max_uncompressed_bytes=CAP)
    assert checked == score(tmp_path, good, verification_paths).checks

    incomplete = perfect_frame(targets).iloc[1:]
    path = upload(tmp_path, incomplete, name="incomplete.zip")
    with pytest.raises(ValidationError) as from_ids:
        check_attack(path, test_ids, nb_classes=NB_CLASSES, max_uncompressed_bytes=CAP)
    with pytest.raises(ValidationError) as from_labels:
        score(tmp_path, path, verification_paths)
    assert from_ids.value.checks == from_labels.value.checks
    assert from_ids.value.message == from_labels.value.message
    assert "Missing captures: 1 capture_id" in from_ids.value.message

    child = (
        "import sys, json; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from app.evaluation.attack import check_attack;"
        "ids = {int(k): v for k, v in json.loads(sys.argv[3]).items()};"
        f"r = check_attack(Path(sys.argv[2]), ids, nb_classes={NB_CLASSES}, max_uncompressed_bytes={CAP});"
        "print(len(r), 'pandas' in sys.modules, 'numpy.ma' in sys.modules)"
    )
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", child, root, str(good), json.dumps(test_ids)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(checked)), "False", "False"]
