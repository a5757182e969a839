"""The sets' row layout is part of the format: the course's example attack pairs groupby with file order."""

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from app.evaluation.defence import DefenceSettings, evaluate_defence

from .test_defence import SAMPLE, SMALL, valid_rows, write_upload

SEQUENCE_LENGTH = 500


def padded_sizes(frame: pd.DataFrame, key) -> np.ndarray:
    """The attack's features, as the course script builds them: each capture's sizes, zero-padded."""
    return np.array(
        [
            np.pad(sizes.to_numpy()[:SEQUENCE_LENGTH], (0, max(0, SEQUENCE_LENGTH - len(sizes))))
            for _, sizes in frame.groupby(key).direction_size
        ]
    )


def test_an_attack_in_the_course_scripts_style_scores_well_on_the_sample(tmp_path):
    result = evaluate_defence(SAMPLE, tmp_path, team_id=1, settings=DefenceSettings(), seed=21)
    train = pd.read_csv(result.train_path)
    test = pd.read_csv(result.test_path)
    labels = train.groupby(["cell_id", "rep"]).cell_id.first().to_numpy()
    forest = RandomForestClassifier(n_estimators=150, random_state=0, n_jobs=2)
    forest.fit(padded_sizes(train, ["cell_id", "rep"]), labels)
    # groupby orders captures by id; the script takes the ids for its output in file order.
    proba = forest.predict_proba(padded_sizes(test, "capture_id"))
    ids = test.capture_id.drop_duplicates().to_numpy()
    truth = pd.read_csv(result.verification_path).set_index("capture_id").cell_id.loc[ids].to_numpy()
    auc = roc_auc_score(truth, proba, multi_class="ovr", labels=forest.classes_)
    assert auc >= 0.9


def test_set_rows_are_laid_out_as_the_format_says(tmp_path):
    rows = valid_rows()
    shuffled = [rows[i] for i in np.random.default_rng(2).permutation(len(rows))]
    result = evaluate_defence(write_upload(tmp_path / "d.zip", shuffled), tmp_path, team_id=3, settings=SMALL, seed=9)
    train, test = pd.read_csv(result.train_path), pd.read_csv(result.test_path)
    # Test: grouped by capture, captures in ascending id, time order inside a capture.
    starts = test.capture_id.ne(test.capture_id.shift()).cumsum()
    assert starts.max() == test.capture_id.nunique(), "each capture's rows are contiguous"
    assert test.capture_id.is_monotonic_increasing
    assert (test.groupby("capture_id").timestamp.diff().dropna() >= 0).all()
    # Train: by cell, then rep, then time.
    pd.testing.assert_frame_equal(train, train.sort_values(["cell_id", "rep", "timestamp"], kind="stable"))
    verification = pd.read_csv(result.verification_path)
    assert verification.capture_id.is_monotonic_increasing
    assert list(verification.capture_id) == list(test.capture_id.drop_duplicates())


def test_test_ids_in_file_order_say_nothing_of_the_cells(tmp_path):
    """Ascending random ids: the order of test captures is unrelated to their cells' order."""
    upload = write_upload(tmp_path / "d.zip", valid_rows())
    orders = set()
    for seed in range(12):
        out = tmp_path / str(seed)
        out.mkdir()
        result = evaluate_defence(upload, out, team_id=3, settings=SMALL, seed=seed)
        orders.add(tuple(pd.read_csv(result.verification_path).cell_id))
    assert len(orders) > 5, "the cells' order in the test file changes with the draw"
