"""The defence and attack files of the evaluation tests (tests/evaluation), as named cases for the client tests.

Each builder writes its file under a folder and returns its path. The small defences are checked with SMALL
(the evaluation tests' settings, as app config); the sample's cases with the defaults.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import SAMPLE_DEFENCE
from tests.evaluation.test_defence import HEADER, capture_rows, valid_rows, write_upload

# tests/evaluation/test_defence.py's SMALL, as app config.
SMALL = {
    "NB_CLASSES": 4,
    "MEAN_NB_REP_PER_CLASS": 3,
    "DEVIATION_NB_REP_PER_CLASS": 1,
    "ROWS_PER_CAPTURE": 2,
    "NB_TRACES_TO_CLASSIFY": 6,
}


@dataclass
class Case:
    name: str
    build: Callable[[Path], Path]
    config: dict = field(default_factory=lambda: dict(SMALL))


def _rows(**kwargs) -> Callable[[Path], Path]:
    return lambda folder: write_upload(folder / "d.zip", **kwargs)


def _csv_text(rows) -> str:
    return HEADER + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)


def _not_utf8(folder: Path) -> Path:
    path = folder / "d.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("defence.csv", _csv_text(valid_rows()).encode() + b"1,1,\xff\xfe,0.5\n")
    return path


def _not_a_zip(folder: Path) -> Path:
    path = folder / "d.zip"
    path.write_text("cell_id,rep\n")
    return path


def _two_csvs(folder: Path) -> Path:
    path = folder / "d.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", _csv_text(valid_rows()))
        archive.writestr("b.csv", _csv_text(valid_rows()))
    return path


def _with(rows: list, **changes: tuple) -> list:
    rows = list(rows)
    for index, row in changes.items():
        rows[int(index[1:])] = row
    return rows


def _lines(edit: Callable[[list[str]], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        lines = _csv_text(valid_rows()).splitlines()
        edit(lines)
        return write_upload(folder / "d.zip", text="\n".join(lines) + "\n")

    return build


def _bad_values(lines: list[str]) -> None:
    lines[16], lines[20], lines[21] = "2,1,abc,0.5", "2,2,,0.5", "2,2,5,0.5,9"


def _sample(transform: Callable[[pd.DataFrame], None] | None = None) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        if transform is None:
            return SAMPLE_DEFENCE
        frame = pd.read_csv(SAMPLE_DEFENCE)
        transform(frame)
        path = folder / "d.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("defence.csv", frame.to_csv(index=False))
        return path

    return build


def _kilobytes(frame: pd.DataFrame) -> None:
    size = frame["direction_size"]
    frame["direction_size"] = (np.sign(size) * np.maximum(1, (size.abs() / 1000).round())).astype(int)


def _milliseconds_as_seconds(frame: pd.DataFrame) -> None:
    frame["timestamp"] = frame["timestamp"] / 1000


DEFENCES = [
    Case("valid", _rows(rows=valid_rows())),
    Case(
        "columns in any order",
        _rows(rows=[r[::-1] for r in valid_rows()], header="timestamp,direction_size,rep,cell_id"),
    ),
    Case(
        "missing and unexpected columns",
        _rows(rows=[r + (0,) for r in valid_rows()], header="cell_id,rep,size,timestamp,extra"),
    ),
    Case("values that are not numbers", _lines(_bad_values)),
    Case(
        "negative and infinite timestamps",
        _rows(rows=_with(valid_rows(), r3=(1, 1, 1002, -1.5), r7=(1, 2, -1013, "inf"))),
    ),
    Case("not utf-8", _not_utf8),
    Case("header only", _rows(text=HEADER + "\n")),
    Case(
        "excel bom crlf quoted header",
        _rows(
            text="\ufeff"
            + '"cell_id","rep","direction_size","timestamp"\r\n'
            + "".join(",".join(map(str, r)) + "\r\n" for r in valid_rows())
        ),
    ),
    Case("blank lines", _lines(lambda lines: lines.insert(5, ""))),
    Case(
        "zero and oversized sizes",
        _rows(rows=_with(valid_rows(), r0=(1, 1, 0, 0.0), r9=(1, 3, 70000, 0.1234567890123))),
    ),
    Case("missing and unexpected cells", _rows(rows=[r for r in valid_rows() if r[0] != 4] + valid_rows({9: 3}))),
    Case("repetitions out of bounds", _rows(rows=valid_rows({1: 1, 2: 5, 3: 3, 4: 3}))),
    Case("short capture", _rows(rows=[r for r in valid_rows() if r[:2] != (3, 2)] + capture_rows(3, 2, nb_rows=2))),
    Case(
        "too few captures for the test set",
        _rows(rows=valid_rows({1: 1, 2: 2, 3: 2, 4: 2})),
        {**SMALL, "MEAN_NB_REP_PER_CLASS": 2},
    ),
    Case("undefined utility", _rows(rows=[(c, r, s, 0.0) for c, r, s, _ in valid_rows()])),
    Case("not a zip", _not_a_zip),
    Case("two csv members", _two_csvs),
    Case("header flood", _rows(text=",".join(["cell_id"] * 20_000) + "\n1,1,1,0\n")),
    Case("repeated columns", _rows(text=HEADER + "," + ",".join(["rep"] * 90) + "\n")),
    Case("more rows than MAX_ROWS", _rows(rows=valid_rows()), {**SMALL, "MAX_ROWS": 47}),
    Case("sample", _sample(), {}),
    Case("sample in kB", _sample(_kilobytes), {}),
    Case("sample in thousands of seconds", _sample(_milliseconds_as_seconds), {}),
]


# ---------------------------------------------------------------------------------------------- attacks


def proba_columns(nb_classes: int) -> list[str]:
    return [f"proba_class_{i}" for i in range(1, nb_classes + 1)]


def attack_frame(captures: dict[int, list[int]], nb_classes: int) -> pd.DataFrame:
    """Uniform probabilities for every capture of every target (team id -> capture ids)."""
    frames = []
    for team, ids in captures.items():
        frame = pd.DataFrame(np.full((len(ids), nb_classes), 1.0 / nb_classes), columns=proba_columns(nb_classes))
        frame.insert(0, "capture_id", ids)
        frame.insert(0, "team_id", team)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def zip_text(path: Path, text: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("attack.csv", text)
    return path


def _edit(fn):
    """A case editing the uniform frame in place (fn returns None) or returning a new frame."""

    def build(folder: Path, captures: dict[int, list[int]], nb_classes: int) -> Path:
        frame = attack_frame(captures, nb_classes)
        changed = fn(frame, captures)
        return zip_text(folder / "a.zip", (frame if changed is None else changed).to_csv(index=False))

    return build


def _text(fn):
    def build(folder: Path, captures: dict[int, list[int]], nb_classes: int) -> Path:
        return zip_text(folder / "a.zip", fn(attack_frame(captures, nb_classes).to_csv(index=False)))

    return build


def _frame_text(fn):
    def build(folder: Path, captures: dict[int, list[int]], nb_classes: int) -> Path:
        return zip_text(folder / "a.zip", fn(attack_frame(captures, nb_classes)))

    return build


def _raw(data: bytes):
    def build(folder: Path, captures, nb_classes) -> Path:
        path = folder / "a.zip"
        path.write_bytes(data)
        return path

    return build


def _first_team(captures):
    return min(captures)


def _set(frame, row, column, value):
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value


ATTACKS = [
    ("uniform", _edit(lambda f, c: None)),
    ("one target of two", _edit(lambda f, c: f[f.team_id == _first_team(c)])),
    ("rows and columns shuffled", _edit(lambda f, c: f.sample(frac=1.0, random_state=1)[f.columns[::-1]])),
    ("unassigned team", _edit(lambda f, c: f.assign(team_id=f.team_id.where(f.index != 0, 999)))),
    ("missing capture ids", _edit(lambda f, c: f.iloc[2:])),
    ("unknown capture ids", _edit(lambda f, c: f.assign(capture_id=f.capture_id.where(f.index != 0, 10**9)))),
    ("duplicate capture ids", _edit(lambda f, c: pd.concat([f, f.iloc[:1]]))),
    ("nan probabilities", _edit(lambda f, c: _set(f, 0, "proba_class_1", "nan"))),
    ("empty cells", _edit(lambda f, c: _set(f, 2, "proba_class_3", ""))),
    ("text in number columns", _edit(lambda f, c: _set(f, 1, "proba_class_2", "high"))),
    ("negative probabilities", _edit(lambda f, c: _set(f, 0, "proba_class_1", -0.25))),
    ("unnormalised probabilities", _edit(lambda f, c: _set(f, 0, "proba_class_1", 0.9))),
    ("missing and unexpected columns", _edit(lambda f, c: f.rename(columns={"proba_class_1": "p1"}))),
    ("dataframe index column", _frame_text(lambda f: f.to_csv(index=True))),
    ("header flood", _text(lambda text: ",".join(["team_id"] * 20_000) + "\n")),
    ("not a zip", _raw(b"team_id,capture_id\n1,2\n")),
    ("ragged csv", _text(lambda text: text + "1,2,3\n")),
    ("header only", _text(lambda text: text.splitlines()[0] + "\n")),
]
