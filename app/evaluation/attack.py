"""Scoring of an attack upload: class probabilities for the test captures of the attacker's targets."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from app.evaluation.archive import inspect_upload, open_capped
from app.evaluation.errors import CheckResult, ValidationError

MAX_EXAMPLES = 5
SUM_TOLERANCE = 1e-6
TOP_K = 5

# A value only counts as empty when the cell is empty: "nan" must reach the finiteness check as NaN
# and "NA" the type check as text, instead of both silently becoming "missing".
_CONVERT_OPTIONS = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True)


@dataclass
class AttackScore:
    """Scores of one attack upload against one defender's verification set."""

    team_id: int
    accuracy: float
    top5_accuracy: float
    roc_auc: float
    nb_captures: int

    def to_dict(self) -> dict:
        """Return the score as a JSON-serialisable dict."""
        return asdict(self)


@dataclass
class AttackResult:
    """Checks run on an accepted attack upload and its scores by defender team id."""

    checks: list[CheckResult]
    scores: dict[int, AttackScore] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict; score keys are the defender team ids as strings."""
        return {
            "checks": [check.to_dict() for check in self.checks],
            "scores": {str(team_id): score.to_dict() for team_id, score in self.scores.items()},
        }


def proba_columns(nb_classes: int) -> list[str]:
    """Return the probability column names of an attack upload, `proba_class_1` .. `proba_class_{nb_classes}`."""
    return [f"proba_class_{c}" for c in range(1, nb_classes + 1)]


def score_attack(
    zip_path: Path,
    verification_paths: dict[int, Path],
    *,
    nb_classes: int,
    max_uncompressed_bytes: int,
) -> AttackResult:
    """Check an attack upload and score it against the verification sets of the teams it covers.

    Args:
        zip_path: the uploaded zip, which must hold exactly one CSV with the columns `team_id`,
            `capture_id` and `proba_class_1` .. `proba_class_{nb_classes}` in any order.
        verification_paths: the uploader's targets this round, defender team id → path of that
            defence's verification zip (one CSV `capture_id,cell_id`). The upload may cover any
            non-empty subset of these targets; each covered target is scored.
        nb_classes: number of classes (cells); true classes are 1..nb_classes.
        max_uncompressed_bytes: cap on the decompressed size of the CSV.

    Returns:
        An AttackResult with every check (all passed) and one AttackScore per covered target.

    Raises:
        ValidationError: when the file is not a zip holding one CSV, is too large, or fails any
            check (columns, types, targets, capture ids, probabilities); `checks` lists every
            check run, failed ones with a count and up to five examples.
        ValueError: when a verification set is unreadable (a platform fault, not the student's).

    Scores, per covered target:
        accuracy: share of captures whose most probable class is the true one. Ties in the
            maximum are broken towards the lowest class index (numpy's argmax).
        top5_accuracy: share of captures whose true class is among the five classes ranked
            first by probability, ties again broken towards the lower class index.
        roc_auc: macro average of the one-vs-rest ROC-AUC of every class present in the
            verification set (sklearn's "ovr"/"macro" cannot score a class with no positive
            sample). Tied probabilities count half, so uniform probabilities give exactly 0.5.
            With fewer than two classes present the AUC is undefined and reported as 0.5.
    """
    member = inspect_upload(Path(zip_path), max_member_bytes=max_uncompressed_bytes)
    with open_capped(Path(zip_path), member, max_uncompressed_bytes) as stream:
        table = _read_csv(stream, member)

    checks: list[CheckResult] = []
    expected = ["team_id", "capture_id", *proba_columns(nb_classes)]
    columns_check = _check_columns(table.column_names, expected)
    checks.append(columns_check)
    if not columns_check.passed:
        _fail(checks)
    checks.append(_check_not_empty(table))
    if not checks[-1].passed:
        _fail(checks)
    types_check, team_ids, capture_ids, proba = _check_types(table, nb_classes)
    checks.append(types_check)
    if not types_check.passed:
        _fail(checks)

    checks.append(_check_targets(team_ids, set(verification_paths)))
    covered = sorted(set(np.unique(team_ids).tolist()) & set(verification_paths))
    truths = {
        team_id: _read_verification(Path(verification_paths[team_id]), team_id, nb_classes) for team_id in covered
    }
    checks.extend(_check_captures(team_ids, capture_ids, truths))
    checks.extend(_check_probabilities(proba, team_ids, capture_ids))
    if not all(check.passed for check in checks):
        _fail(checks)

    scores = {}
    for team_id in covered:
        rows = np.flatnonzero(team_ids == team_id)
        rows = rows[np.argsort(capture_ids[rows], kind="stable")]
        _, true_cells = truths[team_id]  # sorted by capture id, the same ids as `rows`
        scores[team_id] = _score(team_id, proba[rows], true_cells)
    return AttackResult(checks=checks, scores=scores)


def _fail(checks: list[CheckResult]) -> None:
    failed = [check for check in checks if not check.passed]
    summary = " ".join(check.message for check in failed)
    noun = "check" if len(failed) == 1 else "checks"
    raise ValidationError(f"Your attack file failed {len(failed)} {noun}. {summary}", checks)


def _read_csv(stream, member: str) -> pa.Table:
    try:
        return pacsv.read_csv(stream, convert_options=_CONVERT_OPTIONS)
    except pa.ArrowInvalid as exc:
        check = CheckResult(
            name="csv",
            passed=False,
            message=(
                f"{member} could not be read as a CSV ({exc}). Save it as a comma-separated "
                "UTF-8 file with a header line and the same number of fields on every line."
            ),
            count=1,
            examples=[str(exc)[:200]],
        )
        raise ValidationError(check.message, [check]) from None


def _examples(items) -> list[str]:
    return [str(item) for item in list(items)[:MAX_EXAMPLES]]


def _line(row: int) -> int:
    """Line number in the CSV of a 0-based data row (the header is line 1)."""
    return int(row) + 2


def _check_columns(columns: list[str], expected: list[str]) -> CheckResult:
    present = set(columns)
    missing = [name for name in expected if name not in present]
    allowed = set(expected)
    unexpected = [name for name in dict.fromkeys(columns) if name not in allowed]
    duplicated = [name for name in dict.fromkeys(columns) if columns.count(name) > 1]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing column(s): {', '.join(missing[:MAX_EXAMPLES])}")
    if unexpected:
        shown = ", ".join(repr(name) for name in unexpected[:MAX_EXAMPLES])
        hint = " (an unnamed column is usually a DataFrame index: write with index=False)"
        problems.append(f"{len(unexpected)} unexpected column(s): {shown}" + (hint if "" in unexpected else ""))
    if duplicated:
        problems.append(f"duplicated column(s): {', '.join(duplicated[:MAX_EXAMPLES])}")
    if not problems:
        return CheckResult("columns", True, "The columns are the expected ones.")
    nb_classes = len(expected) - 2
    message = (
        f"Columns: {'; '.join(problems)}. The header must be exactly team_id, capture_id and "
        f"proba_class_1 .. proba_class_{nb_classes}, in any order."
    )
    examples = (
        [f"missing {name}" for name in missing[:MAX_EXAMPLES]]
        + [f"unexpected {name!r}" for name in unexpected[:MAX_EXAMPLES]]
        + [f"duplicated {name}" for name in duplicated[:MAX_EXAMPLES]]
    )[:MAX_EXAMPLES]
    return CheckResult("columns", False, message, len(missing) + len(unexpected) + len(duplicated), examples)


def _check_not_empty(table: pa.Table) -> CheckResult:
    if table.num_rows:
        return CheckResult("rows", True, f"The file has {table.num_rows} rows.")
    return CheckResult("rows", False, "The file has a header but no rows: add one row per test capture.", 0, [])


def _check_types(table: pa.Table, nb_classes: int) -> tuple[CheckResult, np.ndarray, np.ndarray, np.ndarray]:
    """Check cell types and convert: int64 team and capture ids, float64 probabilities (rows × classes)."""
    problems: list[str] = []  # (line, column, value) descriptions, in column order
    count = 0
    empty = 0

    def convert(name: str, integer: bool) -> np.ndarray | None:
        nonlocal count, empty
        column = table.column(name)
        nulls = column.null_count
        if nulls:
            rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
            empty += len(rows)
            count += len(rows)
            problems.extend(f"line {_line(r)}, {name}: empty" for r in rows[:MAX_EXAMPLES])
            return None
        kind = column.type
        if pa.types.is_integer(kind):
            values = column.to_numpy().astype(np.int64 if integer else np.float64)
            return values
        if pa.types.is_floating(kind):
            values = column.to_numpy().astype(np.float64)
            if not integer:
                return values
            bad = ~(np.isfinite(values) & (values == np.round(values)))
            if bad.any():
                return _bad(name, values, bad, "not an integer")
            return values.astype(np.int64)
        # Text (or booleans, dates...): show the cells that are not numbers.
        text = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object).astype(str)
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        if integer:
            bad = ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
        else:
            spelled_nan = text.str.strip().str.lower().isin(["nan", "-nan", "+nan"]).to_numpy()
            bad = np.isnan(numbers) & ~spelled_nan
        if bad.any():
            what = "not an integer" if integer else "not a number"
            return _bad(name, text.to_numpy(), bad, what)
        # Numbers pyarrow did not infer (e.g. padded with spaces) are accepted as pandas reads them.
        return numbers.astype(np.int64) if integer else numbers

    def _bad(name: str, values: np.ndarray, bad: np.ndarray, what: str) -> None:
        nonlocal count
        rows = np.flatnonzero(bad)
        count += len(rows)
        problems.extend(f"line {_line(r)}, {name}: {values[r]!r} is {what}" for r in rows[:MAX_EXAMPLES])
        return None

    team_ids = convert("team_id", integer=True)
    capture_ids = convert("capture_id", integer=True)
    probas = [convert(name, integer=False) for name in proba_columns(nb_classes)]
    if problems:
        parts = []
        if empty:
            parts.append(f"{empty} empty cell(s)")
        if count - empty:
            parts.append(f"{count - empty} cell(s) of the wrong type")
        message = (
            f"Types: {' and '.join(parts)}. team_id and capture_id must be integers and every "
            "proba_class_* a number, with no empty cell (pandas writes NaN as an empty cell)."
        )
        check = CheckResult("types", False, message, count, problems[:MAX_EXAMPLES])
        empty_array = np.empty(0)
        return check, empty_array, empty_array, empty_array
    proba = np.column_stack(probas) if probas else np.empty((table.num_rows, 0))
    check = CheckResult("types", True, "Ids are integers and probabilities are numbers.")
    return check, team_ids, capture_ids, proba


def _check_targets(team_ids: np.ndarray, targets: set[int]) -> CheckResult:
    found, counts = np.unique(team_ids, return_counts=True)
    unknown = [(int(t), int(c)) for t, c in zip(found, counts, strict=True) if int(t) not in targets]
    listed = ", ".join(str(t) for t in sorted(targets)) or "none"
    if not unknown:
        covered = ", ".join(str(int(t)) for t in found)
        return CheckResult("targets", True, f"The file covers targets {covered} (yours: {listed}).")
    message = (
        f"Targets: {len(unknown)} team_id(s) are not among your targets this round "
        f"({', '.join(str(t) for t, _ in unknown[:MAX_EXAMPLES])}). Your targets are: {listed}; "
        "keep only rows for these teams."
    )
    examples = [f"team_id {t} ({c} rows)" for t, c in unknown[:MAX_EXAMPLES]]
    return CheckResult("targets", False, message, len(unknown), examples)


def _check_captures(
    team_ids: np.ndarray,
    capture_ids: np.ndarray,
    truths: dict[int, tuple[np.ndarray, np.ndarray]],
) -> list[CheckResult]:
    missing: list[str] = []
    unknown: list[str] = []
    duplicated: list[str] = []
    counts = {"missing": 0, "unknown": 0, "duplicated": 0}
    for team_id, (true_ids, _) in truths.items():
        ids = capture_ids[team_ids == team_id]
        values, freq = np.unique(ids, return_counts=True)
        dups = values[freq > 1]
        lost = np.setdiff1d(true_ids, values, assume_unique=True)
        extra = np.setdiff1d(values, true_ids, assume_unique=True)
        counts["missing"] += len(lost)
        counts["unknown"] += len(extra)
        counts["duplicated"] += len(dups)
        missing.extend(f"team {team_id}: capture_id {c}" for c in lost[:MAX_EXAMPLES])
        unknown.extend(f"team {team_id}: capture_id {c}" for c in extra[:MAX_EXAMPLES])
        duplicated.extend(
            f"team {team_id}: capture_id {c} ({n} rows)"
            for c, n in zip(dups[:MAX_EXAMPLES], freq[freq > 1][:MAX_EXAMPLES], strict=True)
        )

    def result(name: str, examples: list[str], ok: str, problem: str) -> CheckResult:
        n = counts[name.split("_")[0]]
        if not n:
            return CheckResult(name, True, ok)
        return CheckResult(name, False, problem.format(n=n), n, examples[:MAX_EXAMPLES])

    return [
        result(
            "missing_captures",
            missing,
            "Every test capture of the covered targets has a row.",
            "Missing captures: {n} capture_id(s) of your targets' test sets have no row. Give one "
            "row for every capture_id of the test set of each team you cover.",
        ),
        result(
            "unknown_captures",
            unknown,
            "Every capture_id belongs to its team's test set.",
            "Unknown captures: {n} capture_id(s) are not in the test set of the team_id on their "
            "row. Check that each row's team_id matches the test file its capture_id came from.",
        ),
        result(
            "duplicated_captures",
            duplicated,
            "Every capture appears once.",
            "Duplicated captures: {n} capture_id(s) appear on more than one row for the same team. "
            "Keep exactly one row per capture.",
        ),
    ]


def _check_probabilities(proba: np.ndarray, team_ids: np.ndarray, capture_ids: np.ndarray) -> list[CheckResult]:
    def where(row: int) -> str:
        return f"line {_line(row)} (team {team_ids[row]}, capture {capture_ids[row]})"

    def worst_column(row: int, bad: Callable[[np.ndarray], np.ndarray]) -> str:
        column = int(np.flatnonzero(bad(proba[row]))[0])
        return f"proba_class_{column + 1} = {float(proba[row, column])!r}"

    finite = np.isfinite(proba)
    nonfinite_rows = np.flatnonzero(~finite.all(axis=1))
    in_range = (proba >= 0.0) & (proba <= 1.0)  # False for NaN, which is reported above
    out_rows = np.flatnonzero(finite.all(axis=1) & ~in_range.all(axis=1))
    sums = proba.sum(axis=1)
    unnormalised = np.flatnonzero(finite.all(axis=1) & (np.abs(sums - 1.0) > SUM_TOLERANCE))

    checks = []
    if len(nonfinite_rows):
        examples = [f"{where(r)}: {worst_column(r, lambda v: ~np.isfinite(v))}" for r in nonfinite_rows[:MAX_EXAMPLES]]
        message = (
            f"Probabilities: {len(nonfinite_rows)} row(s) hold NaN or infinite values. Every "
            "probability must be a finite number between 0 and 1."
        )
        checks.append(CheckResult("finite", False, message, len(nonfinite_rows), examples))
    else:
        checks.append(CheckResult("finite", True, "Every probability is finite."))
    if len(out_rows):
        examples = [f"{where(r)}: {worst_column(r, lambda v: (v < 0) | (v > 1))}" for r in out_rows[:MAX_EXAMPLES]]
        message = (
            f"Probabilities: {len(out_rows)} row(s) hold values below 0 or above 1. Use "
            "probabilities (e.g. predict_proba), not scores or log-probabilities."
        )
        checks.append(CheckResult("range", False, message, len(out_rows), examples))
    else:
        checks.append(CheckResult("range", True, "Every probability is within [0, 1]."))
    if len(unnormalised):
        examples = [f"{where(r)}: sum = {float(sums[r])!r}" for r in unnormalised[:MAX_EXAMPLES]]
        message = (
            f"Probabilities: {len(unnormalised)} row(s) do not sum to 1 (tolerance "
            f"{SUM_TOLERANCE:g}). Each row's probabilities over all classes must sum to 1: divide "
            "each row by its sum and write with enough digits."
        )
        checks.append(CheckResult("sum", False, message, len(unnormalised), examples))
    else:
        checks.append(CheckResult("sum", True, "Every row sums to 1."))
    return checks


def _read_verification(path: Path, team_id: int, nb_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (capture ids sorted ascending, their true cells) from a verification zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
            if len(members) != 1:
                raise ValueError(f"{len(members)} CSV members")
            data = archive.read(members[0])
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                include_columns=["capture_id", "cell_id"],
                column_types={"capture_id": pa.int64(), "cell_id": pa.int64()},
            ),
        )
        if table.column("capture_id").null_count or table.column("cell_id").null_count:
            raise ValueError("empty cells")
        ids = table.column("capture_id").to_numpy()
        cells = table.column("cell_id").to_numpy()
    except (OSError, zipfile.BadZipFile, pa.ArrowException, KeyError, ValueError) as exc:
        raise ValueError(f"The verification set of team {team_id} is unreadable: {exc}") from exc
    order = np.argsort(ids, kind="stable")
    ids, cells = ids[order], cells[order]
    if len(ids) == 0 or (np.diff(ids) == 0).any():
        raise ValueError(f"The verification set of team {team_id} is empty or repeats captures.")
    if cells.min() < 1 or cells.max() > nb_classes:
        raise ValueError(f"The verification set of team {team_id} has cells outside 1..{nb_classes}.")
    return ids, cells


def _score(team_id: int, proba: np.ndarray, true_cells: np.ndarray) -> AttackScore:
    """Score probabilities (captures × classes, class c in column c - 1) against true cells."""
    nb_captures, nb_classes = proba.shape
    true_index = true_cells - 1
    predicted = np.argmax(proba, axis=1)  # first maximum: ties go to the lowest class
    accuracy = float(np.mean(predicted == true_index))

    # Rank of the true class when classes are ordered by (probability desc, class index asc).
    true_proba = proba[np.arange(nb_captures), true_index][:, None]
    columns = np.arange(nb_classes)[None, :]
    ahead = (proba > true_proba) | ((proba == true_proba) & (columns < true_index[:, None]))
    top5 = float(np.mean(ahead.sum(axis=1) < min(TOP_K, nb_classes)))

    return AttackScore(
        team_id=int(team_id),
        accuracy=accuracy,
        top5_accuracy=top5,
        roc_auc=macro_ovr_auc(proba, true_cells),
        nb_captures=int(nb_captures),
    )


def macro_ovr_auc(proba: np.ndarray, true_cells: np.ndarray) -> float:
    """Return the macro one-vs-rest ROC-AUC over the classes present in `true_cells`.

    Args:
        proba: captures × classes array, class c (1-based) in column c - 1.
        true_cells: true class (1-based) of each capture.

    Returns:
        The mean over present classes of the probability that a random capture of the class gets a
        higher score for it than a random capture of another class, ties counting half
        (Mann-Whitney U, equal to the area under the ROC curve). Classes absent from `true_cells`
        have no positive sample and are left out. With fewer than two classes present the AUC is
        undefined: 0.5 is returned.
    """
    present = np.unique(true_cells)
    nb_captures = len(true_cells)
    if len(present) < 2:
        return 0.5
    scores = proba[:, present - 1]
    ranks = pd.DataFrame(scores).rank(method="average", axis=0).to_numpy()
    positives = true_cells[:, None] == present[None, :]
    nb_pos = positives.sum(axis=0).astype(np.float64)
    nb_neg = nb_captures - nb_pos
    rank_sums = np.where(positives, ranks, 0.0).sum(axis=0)
    aucs = (rank_sums - nb_pos * (nb_pos + 1) / 2) / (nb_pos * nb_neg)
    return float(np.mean(aucs))
