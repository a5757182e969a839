"""`srs validate attack` offline: the test sets' capture ids come from the folder's index when it matches the
files, and from the files themselves otherwise; the verdict never depends on which."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.served import Srs
from tests.conftest import ROOT
from tests.integration.helpers import uniform_attack_rows, zip_csv

INDEX = ".srs-sets.json"


def write_test_set(folder: Path, team_id: int, capture_ids: list[int]) -> Path:
    """A test set in the download's layout: two packets per capture, rows grouped by capture."""
    rows = "".join(f"{c},576,0\n{c},-576,0.25\n" for c in capture_ids)
    path = folder / f"team_{team_id}_test.csv.zip"
    path.write_bytes(zip_csv("capture_id,direction_size,timestamp\n" + rows, member=f"team_{team_id}_test.csv"))
    return path


@pytest.fixture
def srs(tmp_path) -> Srs:
    return Srs(tmp_path / "home")


@pytest.fixture
def sets(tmp_path) -> Path:
    folder = tmp_path / "sets"
    folder.mkdir()
    write_test_set(folder, 3, [11, 12, 13])
    write_test_set(folder, 5, [51, 52])
    return folder


def attack(tmp_path: Path, rows: dict[int, list[int]], name: str = "attack.csv.zip") -> Path:
    """An attack giving uniform probabilities over 100 classes to the given captures of each target."""
    path = tmp_path / name
    path.write_bytes(uniform_attack_rows(rows))
    return path


def report(srs: Srs, path: Path, sets: Path) -> tuple[int, dict]:
    run = srs("validate", "attack", str(path), "--sets", str(sets), "--json")
    return run.exit_code, json.loads(run.stdout)


def test_the_first_validation_indexes_the_sets_and_the_next_gives_the_same_verdicts(srs, sets, tmp_path):
    complete = attack(tmp_path, {3: [11, 12, 13], 5: [51, 52]})
    incomplete = attack(tmp_path, {3: [11, 13]}, name="incomplete.csv.zip")
    first = [report(srs, complete, sets), report(srs, incomplete, sets)]
    index = json.loads((sets / INDEX).read_text())
    assert {name: entry["capture_ids"] for name, entry in index["sets"].items()} == {
        "team_3_test.csv.zip": [11, 12, 13],
        "team_5_test.csv.zip": [51, 52],
    }
    again = [report(srs, complete, sets), report(srs, incomplete, sets)]
    assert first == again
    assert [code for code, _ in again] == [0, 1]
    missing = next(c for c in again[1][1]["checks"] if c["name"] == "missing_captures")
    assert missing["examples"] == ["team 3: capture_id 12"]


def test_a_test_set_replaced_under_the_same_name_is_read_again(srs, sets, tmp_path):
    """Next round's sets unpacked over this round's: the index must not answer with last round's captures."""
    this_round = attack(tmp_path, {3: [11, 12, 13]})
    assert report(srs, this_round, sets)[0] == 0
    write_test_set(sets, 3, [21, 22, 23])
    code, answer = report(srs, this_round, sets)
    assert code == 1
    failed = {c["name"]: c["count"] for c in answer["checks"] if not c["passed"]}
    assert failed == {"missing_captures": 3, "unknown_captures": 3}
    assert report(srs, attack(tmp_path, {3: [21, 22, 23]}, name="next.csv.zip"), sets)[0] == 0
    assert json.loads((sets / INDEX).read_text())["sets"]["team_3_test.csv.zip"]["capture_ids"] == [21, 22, 23]


def test_a_damaged_index_is_ignored_and_rewritten(srs, sets, tmp_path):
    (sets / INDEX).write_text('{"sets": {"team_3_test.csv.zip": {"members": "??", "capture_ids": [99]}')
    assert report(srs, attack(tmp_path, {3: [11, 12, 13]}), sets)[0] == 0
    assert json.loads((sets / INDEX).read_text())["sets"]["team_3_test.csv.zip"]["capture_ids"] == [11, 12, 13]


def test_an_index_entry_that_does_not_match_the_file_is_not_trusted(srs, sets, tmp_path):
    """An index copied from another folder, or edited: its captures are not the file's, so the file is read."""
    assert report(srs, attack(tmp_path, {3: [11, 12, 13]}), sets)[0] == 0
    index = json.loads((sets / INDEX).read_text())
    index["sets"]["team_3_test.csv.zip"]["members"][0][2] += 1  # another CRC: another content
    index["sets"]["team_3_test.csv.zip"]["capture_ids"] = [11, 12]
    (sets / INDEX).write_text(json.dumps(index))
    assert report(srs, attack(tmp_path, {3: [11, 12, 13]}), sets)[0] == 0


def test_a_broken_test_set_is_named_whatever_the_index_says(srs, sets, tmp_path):
    assert report(srs, attack(tmp_path, {3: [11, 12, 13]}), sets)[0] == 0
    (sets / "team_3_test.csv.zip").write_bytes(b"not a zip")
    run = srs("validate", "attack", str(attack(tmp_path, {3: [11, 12, 13]})), "--sets", str(sets), "--json")
    assert run.exit_code == 1
    message = json.loads(run.stdout)["message"]
    assert "team_3_test.csv.zip is not a test set as downloaded" in message and "download it again" in message


def test_a_test_set_without_exactly_one_csv_is_named_with_what_it_holds(srs, sets, tmp_path):
    (sets / "team_3_test.csv.zip").write_bytes(zip_csv("capture_id\n11\n", member="team_3_test.txt"))
    code, answer = report(srs, attack(tmp_path, {3: [11, 12, 13]}), sets)
    assert code == 1
    assert (
        "team_3_test.csv.zip is not a test set as downloaded. "
        "The zip archive holds no .csv file (found 'team_3_test.txt'): download it again."
    ) in answer["message"]


def test_the_checks_are_listed_as_text_wrapped_to_the_terminal(srs, sets, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    run = srs("validate", "attack", str(attack(tmp_path, {3: [11, 13]})), "--sets", str(sets))
    assert run.exit_code == 1
    lines = run.stdout.splitlines()
    assert lines[0] == "Validation of the attack file: failed"
    assert lines[-1] == "Fix the failed checks before uploading."
    assert any(line.startswith("  ok      columns              The columns are team_id") for line in lines)
    failed = next(i for i, line in enumerate(lines) if line.startswith("  FAILED  missing_captures"))
    # the message and its examples continue under the message, not under the mark
    following = lines[failed + 1 : next(i for i, line in enumerate(lines) if line.startswith("  ok      unknown_"))]
    assert following and all(line.startswith(" " * 31) for line in following)
    assert "e.g. team 3: capture_id 12" in " ".join(line.strip() for line in following)
    assert max(len(line) for line in lines) <= 70


def in_a_process(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`srs ARGS` as a student runs it: its own process, through main() (which ends it with os._exit), with
    Python's import log (-X importtime) on stderr."""
    code = "import sys; sys.path.insert(1, 'client'); from srs_client.cli import main; main()"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_a_validation_in_its_own_process_prints_everything_exits_with_its_verdict_and_imports_no_rich(sets, tmp_path):
    """main() ends the process without Python's teardown: the output must still be complete and the exit code the
    command's; and validating an attack needs neither rich nor pandas (a fifth of its time)."""
    good = attack(tmp_path, {3: [11, 12, 13], 5: [51, 52]})
    shown = in_a_process(tmp_path, "validate", "attack", str(good), "--sets", str(sets))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Validation of the attack file: passed\n")
    assert shown.stdout.endswith("Ready to upload.\n")
    imported = {line.split("|")[-1].strip() for line in shown.stderr.splitlines() if line.startswith("import time:")}
    assert "numpy" in imported and "srs_client.cli" in imported  # the log is there
    assert not {"rich", "pandas", "numpy.ma"} & imported

    bad = in_a_process(
        tmp_path, "validate", "attack", str(attack(tmp_path, {3: [11]}, "bad.zip")), "--sets", str(sets), "--json"
    )
    assert bad.returncode == 1
    answer = json.loads(bad.stdout)  # the whole document, flushed before the process ended
    assert answer["passed"] is False and {c["name"] for c in answer["checks"]} >= {"missing_captures", "sum"}

    usage = in_a_process(tmp_path, "validate", "attack", str(good))
    assert usage.returncode == 2 and "Missing option '--sets'" in usage.stderr
