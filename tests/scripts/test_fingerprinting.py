"""The example attack reads the platform's attack download and writes an uploadable classification."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "attack_defence_test_scripts" / "fingerprinting.py"


def make_capture(cell: int, rng: np.random.Generator) -> pd.DataFrame:
    """A capture whose length, response sizes and pacing depend on the cell, with noise."""
    n = int(rng.integers(40, 60)) + 40 * cell
    outgoing = rng.random(n) < 0.15 + 0.05 * cell
    sizes = np.where(outgoing, 576, -rng.choice([1500, 500 + 100 * cell], size=n))
    gaps = rng.exponential(0.002 * cell, size=n)
    gaps[0] = 0.0
    return pd.DataFrame({"direction_size": sizes, "timestamp": np.round(np.cumsum(gaps), 6)})


def write_zip(path: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` as the single CSV of a zip, as the platform's downloads are."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.name.removesuffix(".zip"), frame.to_csv(index=False, float_format="%.6f"))


def make_team(folder: Path, team: int, cells: list[int], seed: int) -> dict[int, int]:
    """Write team_{team}_train/test.csv.zip (10 train, 4 test captures per cell); return test labels."""
    rng = np.random.default_rng(seed)
    train = [make_capture(cell, rng).assign(cell_id=cell, rep=rep) for cell in cells for rep in range(10)]
    labels = np.repeat(cells, 4)
    capture_ids = rng.permutation(len(labels)) + 100  # ids say nothing about the class
    test = [
        make_capture(int(cell), rng).assign(capture_id=int(capture_id))
        for cell, capture_id in sorted(zip(labels, capture_ids, strict=True), key=lambda pair: pair[1])
    ]
    train_frame = pd.concat(train)[["cell_id", "rep", "direction_size", "timestamp"]]
    test_frame = pd.concat(test)[["capture_id", "direction_size", "timestamp"]]
    write_zip(folder / f"team_{team}_train.csv.zip", train_frame)
    write_zip(folder / f"team_{team}_test.csv.zip", test_frame)
    return {int(capture_id): int(cell) for cell, capture_id in zip(labels, capture_ids, strict=True)}


def read_classification(path: Path) -> pd.DataFrame:
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["my_classification.csv"]
        with archive.open("my_classification.csv") as handle:
            return pd.read_csv(handle)


@pytest.fixture(scope="module")
def attack(tmp_path_factory: pytest.TempPathFactory):
    """Run the attack on team 1 (cells 1..5) and team 4 (cells 1..4): (output, labels per team)."""
    folder = tmp_path_factory.mktemp("sets")
    labels = {1: make_team(folder, 1, [1, 2, 3, 4, 5], seed=1), 4: make_team(folder, 4, [1, 2, 3, 4], seed=4)}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "1", "4"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return read_classification(folder / "my_classification.csv.zip"), labels


def test_output_has_the_upload_columns_and_one_row_per_test_capture(attack) -> None:
    output, labels = attack
    probabilities = [f"proba_class_{k}" for k in range(1, 6)]

    assert list(output.columns) == ["team_id", "capture_id", *probabilities]
    for team, team_labels in labels.items():
        rows = output[output.team_id == team]
        assert sorted(rows.capture_id) == sorted(team_labels)


def test_probabilities_are_normalised(attack) -> None:
    output, _ = attack
    probabilities = output.filter(like="proba_class_").to_numpy()

    assert np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_a_class_missing_from_a_team_gets_no_probability(attack) -> None:
    output, _ = attack
    assert (output.loc[output.team_id == 4, "proba_class_5"] == 0).all()


def test_the_attack_recognises_distinguishable_pages(attack) -> None:
    output, labels = attack
    for team, team_labels in labels.items():
        rows = output[output.team_id == team]
        predicted = rows.filter(like="proba_class_").to_numpy().argmax(axis=1) + 1
        truth = rows.capture_id.map(team_labels).to_numpy()
        assert (predicted == truth).mean() >= 0.9, team


def test_help_describes_the_usage() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "--dir" in result.stdout and "teams" in result.stdout
