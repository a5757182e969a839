"""Scoring of an attack upload: class probabilities for the test captures of the attacker's targets."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .archive import inspect_upload, open_capped, read_header, read_single_csv
from .arrays import as_numpy
from .attack_checks import (
    SUM_TOLERANCE,
    check_captures,
    check_probabilities,
    check_rows,
    check_targets,
    check_types,
    describe_columns,
    proba_columns,
)
from .checks import MAX_EXAMPLES, MAX_EXTRA_HEADER_FIELDS, all_passed, check_columns, failure_message
from .confidence import bootstrap_intervals
from .errors import CheckResult, ValidationError

TOP_K = 5
# Recorded with every score: change it whenever a change here could change a score, so rescoring can tell
# "the stored files changed" apart from "the scorer changed".
SCORER_VERSION = "2"  # 2: a set marking a public subset is scored finally on its private captures only
# Which captures of a test set a score counts (AttackScore.subset): the public subset (shown while the round is
# open), the private captures (the rest: the final score), or all of them (a set that marks no public subset).
PUBLIC_SUBSET = "public"
PRIVATE_SUBSET = "private"
ALL_CAPTURES = "all"
# Seed of every attack's bootstrap resampling: the same upload always gets the same intervals.
INTERVAL_SEED = 0

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
    nb_captures: int  # how many captures the scores count
    intervals: dict | None = None  # 95 % bootstrap intervals (confidence.ScoreIntervals.to_dict())
    subset: str = ALL_CAPTURES  # which captures: PUBLIC_SUBSET, PRIVATE_SUBSET or ALL_CAPTURES

    def to_dict(self) -> dict:
        """Return the score as a JSON-serialisable dict."""
        return asdict(self)


@dataclass
class AttackResult:
    """Checks run on an accepted attack upload and its scores by defender team id."""

    checks: list[CheckResult]
    # The final scores: on each target's private captures, or on all of them when its set marks no public subset.
    scores: dict[int, AttackScore] = field(default_factory=dict)
    # Scores on each target's public subset, for the targets whose verification set marks one.
    public_scores: dict[int, AttackScore] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict; score keys are the defender team ids as strings."""
        return {
            "checks": [check.to_dict() for check in self.checks],
            "scores": {str(team_id): score.to_dict() for team_id, score in self.scores.items()},
            "public_scores": {str(team_id): score.to_dict() for team_id, score in self.public_scores.items()},
        }


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
            defence's verification zip (one CSV `capture_id,cell_id`, and optionally `public`, 1 for the
            captures of the public subset). The upload may cover any
            non-empty subset of these targets; each covered target is scored.
        nb_classes: number of classes (cells); true classes are 1..nb_classes.
        max_uncompressed_bytes: cap on the decompressed size of the CSV.

    Returns:
        An AttackResult with every check (all passed) and, per covered target, its final AttackScore in `scores`:
        on the target's private captures (those not in its public subset) when its verification set marks a
        public subset, on all its captures otherwise (sets written before public subsets existed); and, for each
        target whose set marks a public subset, its score on that subset in `public_scores`. Each score's
        `subset` and `nb_captures` say which captures it counts; its intervals are computed on the same ones.
        Public-subset captures never count in the final score: students can probe them with repeated uploads
        while the round is open.

    Raises:
        ValidationError: when the file is not a zip holding one CSV, is too large, or fails any
            check (columns, types, targets, capture ids, probabilities); `checks` lists every
            check run, failed ones with a count and up to five examples.
        ValueError: when a verification set is unreadable, or marks every capture or none as public (a
            platform fault, not the student's).

    Scores, per covered target (each with its 95 % bootstrap interval, see confidence.py):
        accuracy: share of captures whose most probable class is the true one. Ties in the
            maximum are broken towards the lowest class index (numpy's argmax).
        top5_accuracy: share of captures whose true class is among the five classes ranked
            first by probability, ties again broken towards the lower class index.
        roc_auc: macro average of the one-vs-rest ROC-AUC of every class present in the
            verification set (sklearn's "ovr"/"macro" cannot score a class with no positive
            sample). Tied probabilities count half, so uniform probabilities give exactly 0.5.
            With fewer than two classes present the AUC is undefined and reported as 0.5.
    """
    truths: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    publics: dict[int, np.ndarray | None] = {}

    def truth(team_id: int) -> np.ndarray:
        ids, cells, public = read_verification(Path(verification_paths[team_id]), team_id, nb_classes)
        truths[team_id], publics[team_id] = (ids, cells), public
        return ids

    checks, team_ids, capture_ids, proba = _check(
        Path(zip_path), set(verification_paths), truth, nb_classes, max_uncompressed_bytes
    )
    scores, public_scores = {}, {}
    for team_id in truths:
        rows = np.flatnonzero(team_ids == team_id)
        rows = rows[np.argsort(capture_ids[rows], kind="stable")]
        _, true_cells = truths[team_id]  # sorted by capture id, the same ids as `rows`
        public = publics[team_id]
        if public is None:
            scores[team_id] = _score_subset(team_id, proba[rows], true_cells, ALL_CAPTURES)
        else:
            scores[team_id] = _score_subset(team_id, proba[rows[~public]], true_cells[~public], PRIVATE_SUBSET)
            public_scores[team_id] = _score_subset(team_id, proba[rows[public]], true_cells[public], PUBLIC_SUBSET)
    return AttackResult(checks=checks, scores=scores, public_scores=public_scores)


def _score_subset(team_id: int, proba: np.ndarray, true_cells: np.ndarray, subset: str) -> AttackScore:
    """The scores of one subset of a target's captures, with their bootstrap intervals on the same captures."""
    score = score_probabilities(team_id, proba, true_cells)
    score.intervals = bootstrap_intervals(proba, true_cells, seed=INTERVAL_SEED).to_dict()
    score.subset = subset
    return score


def check_attack(
    zip_path: Path,
    test_capture_ids: Mapping[int, Iterable[int]],
    *,
    nb_classes: int,
    max_uncompressed_bytes: int,
) -> list[CheckResult]:
    """Run every check score_attack runs, against the capture ids of the targets' test sets, and score nothing.

    What `srs validate attack` runs on a student's machine, where the test sets' capture ids are known (they are
    the verification sets' ids) but not their labels. Same arguments as score_attack, except test_capture_ids:
    the uploader's targets, defender team id → the capture ids of its test set.

    Returns every check (all passed); raises ValidationError as score_attack does.
    """

    def truth(team_id: int) -> np.ndarray:
        # sorted(set()), not np.unique, which imports numpy.ma (a tenth of the command's time) to do the same
        return np.array(sorted(set(test_capture_ids[team_id])), dtype=np.int64)

    checks, *_ = _check(Path(zip_path), set(test_capture_ids), truth, nb_classes, max_uncompressed_bytes)
    return checks


def _check(
    zip_path: Path,
    targets: set[int],
    truth: Callable[[int], np.ndarray],
    nb_classes: int,
    max_uncompressed_bytes: int,
) -> tuple[list[CheckResult], np.ndarray, np.ndarray, np.ndarray]:
    """Every check of an attack upload (raising ValidationError when one fails), and its parsed columns.

    truth(team_id) gives the sorted capture ids of a covered target's verification set; it is called once for
    each target the file covers, after the types check passed.
    Returns (checks, team_ids, capture_ids, probabilities as rows × classes).
    """
    member = inspect_upload(zip_path, max_member_bytes=max_uncompressed_bytes)
    expected = ["team_id", "capture_id", *proba_columns(nb_classes)]
    # Refuses a header flood before Arrow parses the whole file.
    read_header(zip_path, member, max_uncompressed_bytes, len(expected) + MAX_EXTRA_HEADER_FIELDS)
    with open_capped(zip_path, member, max_uncompressed_bytes) as stream:
        table = _read_csv(stream, member)

    checks: list[CheckResult] = [check_columns(table.column_names, expected, describe_columns(nb_classes))]
    if not checks[-1].passed:
        _fail(checks)
    checks.append(check_rows(table))
    if not checks[-1].passed:
        _fail(checks)
    types_check, team_ids, capture_ids, proba = check_types(table, nb_classes)
    checks.append(types_check)
    if not types_check.passed:
        _fail(checks)

    checks.append(check_targets(team_ids, targets))
    covered = sorted(set(team_ids.tolist()) & targets)
    checks.extend(check_captures(team_ids, capture_ids, {team_id: truth(team_id) for team_id in covered}))
    checks.extend(check_probabilities(proba, team_ids, capture_ids))
    if not all_passed(checks):
        _fail(checks)
    return checks, team_ids, capture_ids, proba


def _fail(checks: list[CheckResult]) -> None:
    summary = " ".join(check.message for check in checks if not check.passed)
    raise ValidationError(f"{failure_message(checks, 'attack file')} {summary}", checks)


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


def read_verification(path: Path, team_id: int, nb_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return (capture ids sorted ascending, their true cells, their public mask or None) from a verification zip.

    The mask is None when the set has no `public` column (sets written before public subsets existed).
    """
    try:
        data = read_single_csv(path, "prepare the defence's sets again.")
        columns = ["capture_id", "cell_id", "public"]
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                include_missing_columns=True,
                column_types={name: pa.int64() for name in columns},
            ),
        )
        if table.column("capture_id").null_count or table.column("cell_id").null_count:
            raise ValueError("empty cells")
        ids = as_numpy(table.column("capture_id"))
        cells = as_numpy(table.column("cell_id"))
        public_column = table.column("public")
        if public_column.null_count == len(public_column):  # absent (or empty): no public subset
            public = None
        elif public_column.null_count:
            raise ValueError("empty cells in the public column")
        else:
            public = as_numpy(public_column) == 1
    except (OSError, zipfile.BadZipFile, pa.ArrowException, KeyError, ValueError, ValidationError) as exc:
        raise ValueError(f"The verification set of team {team_id} is unreadable: {exc}") from exc
    order = np.argsort(ids, kind="stable")
    ids, cells = ids[order], cells[order]
    if len(ids) == 0 or (np.diff(ids) == 0).any():
        raise ValueError(f"The verification set of team {team_id} is empty or repeats captures.")
    if cells.min() < 1 or cells.max() > nb_classes:
        raise ValueError(f"The verification set of team {team_id} has cells outside 1..{nb_classes}.")
    if public is not None:
        public = public[order]
        if not public.any():
            raise ValueError(f"The verification set of team {team_id} has an empty public subset.")
        if public.all():
            raise ValueError(f"The verification set of team {team_id} has no private capture: all are public.")
    return ids, cells, public


def score_probabilities(team_id: int, proba: np.ndarray, true_cells: np.ndarray) -> AttackScore:
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
    import pandas as pd  # here, not at the top: `srs validate attack` checks without scoring and starts faster

    scores = proba[:, present - 1]
    ranks = pd.DataFrame(scores).rank(method="average", axis=0).to_numpy()
    positives = true_cells[:, None] == present[None, :]
    nb_pos = positives.sum(axis=0).astype(np.float64)
    nb_neg = nb_captures - nb_pos
    rank_sums = np.where(positives, ranks, 0.0).sum(axis=0)
    aucs = (rank_sums - nb_pos * (nb_pos + 1) / 2) / (nb_pos * nb_neg)
    return float(np.mean(aucs))


__all__ = [
    "ALL_CAPTURES",
    "MAX_EXAMPLES",
    "PRIVATE_SUBSET",
    "PUBLIC_SUBSET",
    "SCORER_VERSION",
    "SUM_TOLERANCE",
    "TOP_K",
    "AttackResult",
    "AttackScore",
    "check_attack",
    "macro_ovr_auc",
    "proba_columns",
    "read_verification",
    "score_attack",
]
