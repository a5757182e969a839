"""Defence evaluation: checks a student can act on, utility, the split and the files written."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.evaluation.defence import (
    DefenceSettings,
    check_captures,
    check_sizes,
    compute_utility,
    evaluate_defence,
    group_captures,
    read_defence,
)
from app.evaluation.defence.writing import decimal_scale
from app.evaluation.errors import ValidationError

SAMPLE = Path(__file__).resolve().parents[2] / "attack_defence_test_scripts" / "test_defence.csv.zip"
SMALL = DefenceSettings(
    nb_classes=4,
    mean_nb_rep_per_class=3,
    deviation_nb_rep_per_class=1,
    rows_per_capture=2,
    nb_traces_to_classify=6,
)
HEADER = "cell_id,rep,direction_size,timestamp"


def capture_rows(cell: int, rep: int, nb_rows: int = 4) -> list[tuple]:
    """Rows of one capture whose sizes identify it: cell * 1000 + rep * 10 + packet number."""
    return [
        (cell, rep, (cell * 1000 + rep * 10 + i) * (-1) ** i, round(0.1234567890123 * i + rep, 13))
        for i in range(nb_rows)
    ]


def valid_rows(reps: dict[int, int] | None = None) -> list[tuple]:
    reps = reps or {cell: 3 for cell in range(1, 5)}
    return [row for cell, count in reps.items() for rep in range(1, count + 1) for row in capture_rows(cell, rep)]


def write_upload(path: Path, rows: list[tuple] | None = None, text: str | None = None, header: str = HEADER) -> Path:
    if text is None:
        text = header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("defence.csv", text)
    return path


def evaluate(tmp_path: Path, upload: Path, settings: DefenceSettings = SMALL, seed: int = 3, name: str = "out"):
    out_dir = tmp_path / name
    out_dir.mkdir(exist_ok=True)
    return evaluate_defence(upload, out_dir, team_id=7, settings=settings, seed=seed)


def failed_checks(tmp_path: Path, upload: Path, settings: DefenceSettings = SMALL) -> dict:
    out_dir = tmp_path / "failed"
    out_dir.mkdir()
    with pytest.raises(ValidationError) as caught:
        evaluate_defence(upload, out_dir, team_id=7, settings=settings, seed=1)
    assert list(out_dir.iterdir()) == [], "nothing is written for a failed defence"
    return {check.name: check for check in caught.value.checks if not check.passed}


# ---------------------------------------------------------------------------------------------- checks


def test_valid_defence_passes_every_check_and_reports_progress(tmp_path):
    stages = []
    result = evaluate_defence(
        write_upload(tmp_path / "d.zip", valid_rows()),
        tmp_path,
        team_id=7,
        settings=SMALL,
        seed=1,
        progress=stages.append,
    )
    assert stages == ["reading", "checking", "measuring", "splitting", "writing"]
    assert all(check.passed for check in result.checks)
    assert [check.name for check in result.checks] == [
        "columns",
        "types",
        "sizes",
        "cells",
        "repetitions",
        "capture_length",
        "capture_count",
        "utility",
    ]
    assert (result.nb_rows, result.nb_captures, result.nb_test_captures, result.nb_train_captures) == (48, 12, 6, 6)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["utility"]["duration"]["max"] == pytest.approx(3 * 0.1234567890123)
    assert "train_path" not in summary


def test_columns_in_any_order_are_accepted(tmp_path):
    rows = [(r[3], r[2], r[1], r[0]) for r in valid_rows()]
    result = evaluate(tmp_path, write_upload(tmp_path / "d.zip", rows, header="timestamp,direction_size,rep,cell_id"))
    assert result.nb_captures == 12


def test_missing_and_unexpected_columns_are_named(tmp_path):
    rows = [r[:3] + (r[3], 0) for r in valid_rows()]
    upload = write_upload(tmp_path / "d.zip", rows, header="cell_id,rep,size,timestamp,extra")
    failed = failed_checks(tmp_path, upload)
    assert "missing 1 column: 'direction_size'" in failed["columns"].message
    assert "unexpected 2 columns: 'size', 'extra'" in failed["columns"].message
    assert failed["types"].message.startswith("Not checked")
    assert failed["cells"].message.startswith("Not checked")


def test_values_that_are_not_numbers_are_shown_with_their_line(tmp_path):
    text = HEADER + "\n" + "".join(",".join(map(str, row)) + "\n" for row in valid_rows())
    lines = text.splitlines()
    lines[16] = "2,1,abc,0.5"  # line 17 of the file
    lines[20] = "2,2,,0.5"  # empty cell
    lines[21] = "2,2,5,0.5,9"  # a field too many
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", text="\n".join(lines) + "\n"))
    types = failed["types"]
    assert types.count == 3
    assert types.examples == [
        "line 17: direction_size = 'abc' is not a whole number",
        "line 21: direction_size = '' is empty",
        "line 22: has 5 fields, expected 4",
    ]
    assert failed["sizes"].message.startswith("Not checked")


def test_negative_or_infinite_timestamps_fail(tmp_path):
    rows = valid_rows()
    rows[3] = rows[3][:3] + (-1.5,)
    rows[7] = rows[7][:3] + ("inf",)
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", rows))
    assert set(failed) == {"types"}, "other checks still run when only timestamps are wrong"
    assert failed["types"].count == 2
    assert failed["types"].examples == [
        "line 5: timestamp = -1.5 is negative",
        "line 9: timestamp = inf is not a finite number",
    ]


def test_text_that_is_not_utf8_is_reported(tmp_path):
    text = HEADER + "\n" + "".join(",".join(map(str, row)) + "\n" for row in valid_rows())
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("defence.csv", text.encode() + b"1,1,\xff\xfe,0.5\n")
    failed = failed_checks(tmp_path, path)
    assert "cannot be read as CSV text: save it as plain UTF-8" in failed["types"].message


def test_header_only_file_fails_the_cell_check(tmp_path):
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", text=HEADER + "\n"))
    assert "missing 4 cells: 1, 2, 3, 4" in failed["cells"].message


def test_excel_style_bom_crlf_and_quoted_header_are_read(tmp_path):
    body = "".join(",".join(map(str, row)) + "\r\n" for row in valid_rows())
    text = "\ufeff" + '"cell_id","rep","direction_size","timestamp"\r\n' + body
    result = evaluate(tmp_path, write_upload(tmp_path / "d.zip", text=text))
    assert result.nb_rows == 48


def test_blank_lines_are_forgiven(tmp_path):
    text = HEADER + "\n" + "".join(",".join(map(str, row)) + "\n" for row in valid_rows())
    lines = text.splitlines()
    lines.insert(5, "")
    result = evaluate(tmp_path, write_upload(tmp_path / "d.zip", text="\n".join(lines) + "\n\n"))
    assert result.nb_rows == 48


def test_zero_and_oversized_packet_sizes_fail(tmp_path):
    rows = valid_rows()
    rows[0] = (1, 1, 0, 0.0)
    rows[9] = rows[9][:2] + (70000,) + rows[9][3:]
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", rows))
    assert set(failed) == {"sizes"}
    assert failed["sizes"].count == 2
    assert failed["sizes"].examples == ["line 2: direction_size = 0", "line 11: direction_size = 70000"]


def test_missing_and_unexpected_cells_are_named(tmp_path):
    rows = [r for r in valid_rows() if r[0] != 4] + valid_rows({9: 3})
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", rows))
    assert "missing 1 cell: 4" in failed["cells"].message
    assert "unexpected 1 cell: 9" in failed["cells"].message
    assert failed["cells"].count == 2


def test_repetitions_outside_the_bounds_are_named_with_their_count(tmp_path):
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", valid_rows({1: 1, 2: 5, 3: 3, 4: 3})))
    check = failed["repetitions"]
    assert check.count == 2
    assert "outside 2..4: cells 1, 2" in check.message
    assert check.examples == ["cell 1: 1 repetition", "cell 2: 5 repetitions"]


def test_repetition_bounds_are_included(tmp_path):
    result = evaluate(tmp_path, write_upload(tmp_path / "d.zip", valid_rows({1: 2, 2: 4, 3: 3, 4: 3})))
    assert result.nb_captures == 12


def test_short_captures_fail(tmp_path):
    rows = [r for r in valid_rows() if not (r[0] == 3 and r[1] == 2)] + capture_rows(3, 2, nb_rows=2)
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", rows))
    assert failed["capture_length"].examples == ["cell 3, rep 2: 2 rows"]
    assert "fewer than 3 rows" in failed["capture_length"].message


def test_too_few_captures_for_the_test_set(tmp_path):
    settings = DefenceSettings(
        nb_classes=4, mean_nb_rep_per_class=2, deviation_nb_rep_per_class=1, rows_per_capture=2, nb_traces_to_classify=6
    )
    upload = write_upload(tmp_path / "d.zip", valid_rows({1: 1, 2: 2, 3: 2, 4: 2}))
    failed = failed_checks(tmp_path, upload, settings)
    message = failed["capture_count"].message
    assert "there are 7 captures, 10 are needed" in message
    assert "1 cell has fewer than 2 captures (1 for the test set and one to train on): 1" in message
    assert "2 cells must give one more test capture and keep one to train on (3 captures), but only 0" in message


def check_traces(traces, settings) -> list:
    """The checks evaluate_defence runs on typed values, on traces in memory."""
    sizes = check_sizes(traces)
    _, captures = group_captures(traces)
    return [sizes, *check_captures(captures, settings)]


def test_checks_run_on_traces_in_memory(tmp_path):
    traces, checks = read_defence(write_upload(tmp_path / "d.zip", valid_rows()), SMALL)
    assert [c.passed for c in checks] == [True, True]
    assert all(check.passed for check in check_traces(traces, SMALL))
    assert not all(check.passed for check in check_traces(traces, DefenceSettings()))


def test_undefined_utility_is_a_failed_check(tmp_path):
    rows = [(cell, rep, size, 0.0) for cell, rep, size, _ in valid_rows()]
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", rows))
    assert set(failed) == {"utility"}
    assert "undefined" in failed["utility"].message
    assert "median duration (0 s)" in failed["utility"].message


def test_not_a_zip_is_reported(tmp_path):
    path = tmp_path / "d.zip"
    path.write_text("cell_id,rep\n")
    with pytest.raises(ValidationError, match="not a zip archive"):
        evaluate(tmp_path, path)


# ---------------------------------------------------------------------------------------------- split


def read_sets(result) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return tuple(pd.read_csv(p) for p in (result.train_path, result.test_path, result.verification_path))


def capture_signature(sizes) -> tuple[int, int]:
    """(cell, original rep) of a capture, from the sizes built by capture_rows."""
    first = abs(int(sizes.iloc[0]))
    return first // 1000, (first % 1000) // 10


def test_split_sizes_ids_and_files(tmp_path):
    result = evaluate(tmp_path, write_upload(tmp_path / "d.zip", valid_rows()))
    train, test, verification = read_sets(result)
    assert result.train_path.name == "team_7_train.csv.zip"
    with zipfile.ZipFile(result.train_path) as archive:
        assert archive.namelist() == ["team_7_train.csv"]
    assert list(train.columns) == ["cell_id", "rep", "direction_size", "timestamp"]
    assert list(test.columns) == ["capture_id", "direction_size", "timestamp"]
    assert list(verification.columns) == ["capture_id", "cell_id", "public"]
    assert verification.public.sum() == 2  # round(6 / 3) captures in the public subset, never in the test file
    assert len(verification) == 6 and verification.capture_id.is_unique
    assert set(verification.cell_id) == {1, 2, 3, 4}, "every cell is in the test set"
    assert verification.capture_id.between(10**8, 2**31 - 1).all()
    assert set(test.capture_id) == set(verification.capture_id)
    # Each test capture is one original capture of the cell the verification set names.
    test_captures = {cid: capture_signature(rows.direction_size) for cid, rows in test.groupby("capture_id")}
    for capture_id, cell in zip(verification.capture_id, verification.cell_id, strict=True):
        assert test_captures[capture_id][0] == cell
    train_captures = {key: capture_signature(rows.direction_size) for key, rows in train.groupby(["cell_id", "rep"])}
    assert len(train_captures) == 6
    assert train.groupby("cell_id").rep.nunique().min() >= 1
    assert set(train_captures.values()).isdisjoint(test_captures.values()), "no capture is in both sets"
    assert len(set(train_captures.values()) | set(test_captures.values())) == 12
    assert not set(train.rep) & {1, 2, 3}, "training reps are new ids"
    # Every capture starts at 0 (when it was taken says nothing); gaps between packets and their order are kept.
    for frame, key in ((train, ["cell_id", "rep"]), (test, "capture_id")):
        assert (frame.groupby(key).timestamp.first() == 0).all()
        assert frame.groupby(key).timestamp.diff().dropna().to_numpy() == pytest.approx(0.1234567890123, abs=1e-12)


def test_split_is_reproducible_from_the_seed(tmp_path):
    upload = write_upload(tmp_path / "d.zip", valid_rows())
    first = read_sets(evaluate(tmp_path, upload, seed=11, name="a"))
    second = read_sets(evaluate(tmp_path, upload, seed=11, name="b"))
    other = read_sets(evaluate(tmp_path, upload, seed=12, name="c"))
    for a, b in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not first[2].equals(other[2])


def test_row_order_does_not_change_the_result(tmp_path):
    rows = valid_rows()
    shuffled = [rows[i] for i in np.random.default_rng(5).permutation(len(rows))]
    a = evaluate(tmp_path, write_upload(tmp_path / "a.zip", rows), name="a")
    b = evaluate(tmp_path, write_upload(tmp_path / "b.zip", shuffled), name="b")
    assert a.to_dict() == b.to_dict()
    for x, y in zip(read_sets(a), read_sets(b), strict=True):
        pd.testing.assert_frame_equal(x, y)


# ---------------------------------------------------------------------------------------------- real sample


def test_real_sample_utility_and_row_order(tmp_path):
    settings = DefenceSettings()
    traces, checks = read_defence(SAMPLE, settings)
    assert all(check.passed for check in checks)
    assert len(traces) == 1_533_406
    assert all(check.passed for check in check_traces(traces, settings))
    traces, captures = group_captures(traces)
    utility, score = compute_utility(traces, captures)
    assert score == pytest.approx(5.730, abs=0.001)

    frame = pd.read_csv(SAMPLE)
    shuffled = tmp_path / "shuffled.csv.zip"
    frame.sample(frac=1, random_state=0).to_csv(
        shuffled, index=False, compression={"method": "zip", "archive_name": "shuffled.csv", "compresslevel": 1}
    )
    a = evaluate(tmp_path, SAMPLE, settings, seed=4, name="a")
    b = evaluate(tmp_path, shuffled, settings, seed=4, name="b")
    assert a.utility == b.utility == utility
    assert a.utility_score == b.utility_score == score
    pd.testing.assert_frame_equal(pd.read_csv(a.verification_path), pd.read_csv(b.verification_path))
    train = pd.read_csv(a.train_path)
    assert len(train) + len(pd.read_csv(a.test_path)) == len(frame)


# ---------------------------------------------------------------------------------------------- limits


def test_a_header_flood_is_refused_with_a_message(tmp_path):
    text = ",".join(["cell_id"] * 20_000) + "\n1,1,1,0\n"
    with pytest.raises(ValidationError, match="has 20000 fields, more than the 104 a header may have"):
        evaluate(tmp_path, write_upload(tmp_path / "d.zip", text=text))


def test_repeated_columns_are_named_once_each(tmp_path):
    text = HEADER + "," + ",".join(["rep"] * 90) + "\n"
    failed = failed_checks(tmp_path, write_upload(tmp_path / "d.zip", text=text))
    assert "repeated 1 column: 'rep'" in failed["columns"].message


@pytest.mark.parametrize("valid_first", [True, False], ids=["typed parse", "diagnostics parse"])
def test_more_rows_than_the_cap_are_refused(tmp_path, valid_first):
    rows = valid_rows()
    if not valid_first:
        rows[0] = (1, 1, "abc", 0.0)  # the typed parse fails at once: the diagnostics parse counts too
    settings = DefenceSettings(**{**SMALL.__dict__, "max_rows": 47})
    upload = write_upload(tmp_path / "d.zip", rows)
    with pytest.raises(ValidationError, match="more than 47 rows \\(packets\\), the most a defence may have"):
        evaluate(tmp_path, upload, settings)
    within = DefenceSettings(**{**SMALL.__dict__, "max_rows": 48})
    if valid_first:
        assert evaluate(tmp_path, upload, within, name="ok").nb_rows == 48
    else:
        assert "types" in failed_checks(tmp_path, upload, within), "at the cap the usual checks answer"


# ---------------------------------------------------------------------------------------------- label signal


def test_the_test_set_takes_the_same_number_of_captures_from_every_cell(tmp_path):
    # Cells captured 2, 4, 3 and 3 times: the train counts differ, the test counts must not.
    settings = DefenceSettings(
        nb_classes=4, mean_nb_rep_per_class=3, deviation_nb_rep_per_class=1, rows_per_capture=2, nb_traces_to_classify=4
    )
    for seed in range(5):
        result = evaluate(
            tmp_path, write_upload(tmp_path / "d.zip", valid_rows({1: 2, 2: 4, 3: 3, 4: 3})), settings, seed
        )
        verification = pd.read_csv(result.verification_path)
        assert verification.cell_id.value_counts().to_dict() == {1: 1, 2: 1, 3: 1, 4: 1}


def test_an_uneven_test_set_is_as_even_as_possible(tmp_path):
    counts = set()
    for seed in range(6):
        verification = pd.read_csv(
            evaluate(tmp_path, write_upload(tmp_path / "d.zip", valid_rows()), seed=seed).verification_path
        )
        per_cell = verification.cell_id.value_counts()
        assert sorted(per_cell) == [1, 1, 2, 2]  # 6 captures over 4 cells
        counts.add(tuple(per_cell.sort_index()))
    assert len(counts) > 1, "which cells give one more is drawn at random"


def test_sample_test_set_has_three_captures_per_cell_and_rebased_times(tmp_path):
    frame = pd.read_csv(SAMPLE)
    late = frame.copy()
    late["timestamp"] += 1_700_000_000.0 + late.rep * 3600.0  # absolute times: they would tell captures apart
    path = tmp_path / "late.csv.zip"
    late.to_csv(path, index=False, compression={"method": "zip", "archive_name": "late.csv", "compresslevel": 1})
    result = evaluate(tmp_path, path, DefenceSettings(), seed=8)
    train, test, verification = read_sets(result)
    assert set(verification.cell_id.value_counts()) == {3}
    assert set(verification[verification.public == 1].cell_id.value_counts()) == {1}  # 1/3 public, one per cell
    assert (test.groupby("capture_id").timestamp.first() == 0).all()
    assert (train.groupby(["cell_id", "rep"]).timestamp.first() == 0).all()
    assert train.timestamp.max() < 10_000 and test.timestamp.max() < 10_000
    # Each rebased time is the exact decimal difference, as a student would write it: no float noise.
    durations = (frame.groupby(["cell_id", "rep"]).timestamp.agg(lambda t: t.max() - t.min())).round(6)
    written = pd.concat([train.groupby(["cell_id", "rep"]).timestamp.max(), test.groupby("capture_id").timestamp.max()])
    assert sorted(written) == sorted(durations)
    text = pd.read_csv(result.test_path, dtype={"timestamp": str}).timestamp
    assert text.str.fullmatch(r"\d+(\.\d{1,6})?").all(), text[~text.str.fullmatch(r"\d+(\.\d{1,6})?")].head()


def test_decimal_scale_finds_the_uploads_decimals_or_none():
    assert decimal_scale(np.array([0.0, 0.523642, 1.16, 1_700_000_000.000001])) == 1e6
    assert decimal_scale(np.array([0.0, 2.0, 15.0])) == 1.0
    assert decimal_scale(np.array([0.5, 0.25, 0.125])) == 1e3
    assert decimal_scale(np.random.default_rng(1).random(100)) is None  # full double precision: left as it is
    assert decimal_scale(np.array([np.nextafter(1e12, 2e12)])) is None  # too many decimals for a double
    assert decimal_scale(np.array([0.1, np.nan])) is None
    assert decimal_scale(np.array([])) is None
