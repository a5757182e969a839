"""Checks of an attack upload a student can act on: columns, rows, types, targets, captures, probabilities.

Row numbers in messages are line numbers of the CSV file, the header being line 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from .arrays import as_numpy
from .checks import MAX_EXAMPLES, failed, passed, plural
from .errors import CheckResult

SUM_TOLERANCE = 1e-6


def proba_columns(nb_classes: int) -> list[str]:
    """Return the probability column names of an attack upload, `proba_class_1` .. `proba_class_{nb_classes}`."""
    return [f"proba_class_{c}" for c in range(1, nb_classes + 1)]


def _line(row: int) -> int:
    """Line number in the CSV of a 0-based data row (the header is line 1)."""
    return int(row) + 2


def describe_columns(nb_classes: int) -> str:
    """The expected header in words (listing a hundred probability columns would drown the message)."""
    return f"team_id, capture_id and proba_class_1 .. proba_class_{nb_classes}"


def check_rows(table: pa.Table) -> CheckResult:
    """The file has at least one row."""
    if table.num_rows:
        return passed("rows", f"The file has {plural(table.num_rows, 'row')}.")
    return failed("rows", "The file has a header but no rows: add one row per test capture.", 0)


def check_types(table: pa.Table, nb_classes: int) -> tuple[CheckResult, np.ndarray, np.ndarray, np.ndarray]:
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
            values = as_numpy(column).astype(np.int64 if integer else np.float64, copy=False)
            return values
        if pa.types.is_floating(kind):
            values = as_numpy(column).astype(np.float64, copy=False)
            if not integer:
                return values
            bad = ~(np.isfinite(values) & (values == np.round(values)))
            if bad.any():
                return _bad(name, values, bad, "not an integer")
            return values.astype(np.int64)
        # Text (or booleans, dates...): show the cells that are not numbers. pandas only on this rare path, so that
        # checking a well-formed file (srs validate) does not pay for importing it.
        import pandas as pd

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
            parts.append(plural(empty, "empty cell"))
        if count - empty:
            parts.append(f"{plural(count - empty, 'cell')} of the wrong type")
        message = (
            f"Types: {' and '.join(parts)}. team_id and capture_id must be integers and every "
            "proba_class_* a number, with no empty cell (pandas writes NaN as an empty cell)."
        )
        check = failed("types", message, count, problems)
        empty_array = np.empty(0)
        return check, empty_array, empty_array, empty_array
    proba = np.column_stack(probas) if probas else np.empty((table.num_rows, 0))
    check = passed("types", "Ids are integers and probabilities are numbers.")
    return check, team_ids, capture_ids, proba


def check_targets(team_ids: np.ndarray, targets: set[int]) -> CheckResult:
    """Every team_id is one of the uploader's targets this round."""
    found, counts = np.unique(team_ids, return_counts=True)
    unknown = [(int(t), int(c)) for t, c in zip(found, counts, strict=True) if int(t) not in targets]
    listed = ", ".join(str(t) for t in sorted(targets)) or "none"
    if not unknown:
        covered = ", ".join(str(int(t)) for t in found)
        return passed("targets", f"The file covers targets {covered} (yours: {listed}).")
    message = (
        f"Targets: {plural(len(unknown), 'team_id')} {'is' if len(unknown) == 1 else 'are'} not among your targets "
        "this round "
        f"({', '.join(str(t) for t, _ in unknown[:MAX_EXAMPLES])}). Your targets are: {listed}; "
        "keep only rows for these teams."
    )
    examples = [f"team_id {t} ({c} rows)" for t, c in unknown[:MAX_EXAMPLES]]
    return failed("targets", message, len(unknown), examples)


def check_captures(
    team_ids: np.ndarray,
    capture_ids: np.ndarray,
    true_ids: dict[int, np.ndarray],
) -> list[CheckResult]:
    """Each covered target's test captures appear once each, and no other capture does.

    true_ids: each covered target's test capture ids, sorted and unique.
    """
    missing: list[str] = []
    unknown: list[str] = []
    duplicated: list[str] = []
    counts = {"missing": 0, "unknown": 0, "duplicated": 0}
    for team_id, truth in true_ids.items():
        ids = capture_ids[team_ids == team_id]
        values, freq = np.unique(ids, return_counts=True)
        dups = values[freq > 1]
        lost = np.setdiff1d(truth, values, assume_unique=True)
        extra = np.setdiff1d(values, truth, assume_unique=True)
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
            return passed(name, ok)
        return failed(name, problem.format(n=plural(n, "capture_id")), n, examples)

    return [
        result(
            "missing_captures",
            missing,
            "Every test capture of the covered targets has a row.",
            "Missing captures: {n} of your targets' test sets without a row. Give one "
            "row for every capture_id of the test set of each team you cover.",
        ),
        result(
            "unknown_captures",
            unknown,
            "Every capture_id belongs to its team's test set.",
            "Unknown captures: {n} not in the test set of the team_id on their row."
            " Check that each row's team_id matches the test file its capture_id came from.",
        ),
        result(
            "duplicated_captures",
            duplicated,
            "Every capture appears once.",
            "Duplicated captures: {n} on more than one row for the same team. Keep exactly one row per capture.",
        ),
    ]


def check_probabilities(proba: np.ndarray, team_ids: np.ndarray, capture_ids: np.ndarray) -> list[CheckResult]:
    """Probabilities are finite, within [0, 1], and every row sums to 1."""

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
            f"Probabilities: {plural(len(nonfinite_rows), 'row')} with NaN or infinite values. Every "
            "probability must be a finite number between 0 and 1."
        )
        checks.append(failed("finite", message, len(nonfinite_rows), examples))
    else:
        checks.append(passed("finite", "Every probability is finite."))
    if len(out_rows):
        examples = [f"{where(r)}: {worst_column(r, lambda v: (v < 0) | (v > 1))}" for r in out_rows[:MAX_EXAMPLES]]
        message = (
            f"Probabilities: {plural(len(out_rows), 'row')} with values below 0 or above 1. Use "
            "probabilities (e.g. predict_proba), not scores or log-probabilities."
        )
        checks.append(failed("range", message, len(out_rows), examples))
    else:
        checks.append(passed("range", "Every probability is within [0, 1]."))
    if len(unnormalised):
        examples = [f"{where(r)}: sum = {float(sums[r])!r}" for r in unnormalised[:MAX_EXAMPLES]]
        message = (
            f"Probabilities: {plural(len(unnormalised), 'row')} not summing to 1 (tolerance "
            f"{SUM_TOLERANCE:g}). Each row's probabilities over all classes must sum to 1: divide "
            "each row by its sum and write with enough digits."
        )
        checks.append(failed("sum", message, len(unnormalised), examples))
    else:
        checks.append(passed("sum", "Every row sums to 1."))
    return checks
