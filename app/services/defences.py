"""Defences: evaluate an uploaded trace in the worker; the team's latest accepted defence."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.evaluation.defence import DefenceResult, evaluate_defence
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import BaselineRun, Defence, Reference, Submission
from app.services import baseline, lifecycle, references, reruns
from app.services.settings import defence_settings
from app.storage import get_storage


def latest_defence(team_id: int | None) -> Defence | None:
    """The team's last uploaded accepted defence (the one the next round will pin)."""
    return db.session.scalar(
        sa.select(Defence)
        .join(Submission, Submission.id == Defence.submission_id)
        .where(Defence.team_id == team_id)
        .order_by(Submission.id.desc())  # upload order, not the order evaluations finished in
        .limit(1)
    )


def run_evaluation(submission_id: int, delivery: lifecycle.Delivery = lifecycle.Delivery()) -> None:
    """Evaluate a queued defence submission; every path ends in a recorded success or failure."""
    lifecycle.run(submission_id, _evaluate, delivery)
    baseline.enqueue_for_submission(submission_id)  # the privacy estimate, on its own queue


def _evaluate(run: lifecycle.Run) -> tuple[dict[str, Any], list[Defence | BaselineRun]]:
    """Check, measure against the reference and split the upload; store the three sets under the run's keys;
    the Defence to record (with its baseline run, in the same transaction)."""
    submission, storage, watch = run.submission, get_storage(), run.watch
    watch.lap("reference")
    seed = reruns.previous_seed(submission.id)  # a re-run splits as the first run did
    seed = secrets.randbits(62) if seed is None else seed
    try:
        reference = references.reference_for_evaluation()
    except references.NoReference as exc:  # not the student's fault: a failure they can retry (logged)
        raise ValidationError(exc.message) from exc
    medians = references.reference_medians(reference)
    watch.lap("storage read")
    with storage.local_path(submission.file_key) as upload:
        result = evaluate_defence(
            upload,
            run.work,
            team_id=submission.team_id,
            settings=defence_settings(current_app.config),
            seed=seed,
            progress=run.progress,
            reference=medians,
            # The figures are final once every check passed: shown while the attackers' sets are written.
            accepted=lambda found: run.publish(_results(found, reference)),
        )
        watch.lap("storing sets")
    # Keyed by submission and run: a new defence never overwrites the files a round pinned, and a duplicate
    # run never touches the files of the run that committed.
    keys = {
        name: run.save(path.name, path)
        for name, path in (
            ("train", result.train_path),
            ("test", result.test_path),
            ("verification", result.verification_path),
        )
    }
    watch.lap("recording")
    defence = Defence(
        team_id=submission.team_id,
        submission_id=submission.id,
        utility_score=result.utility_score,
        utility=result.utility,
        seed=seed,
        train_key=keys["train"],
        test_key=keys["test"],
        verification_key=keys["verification"],
        train_size=storage.size(keys["train"]),
        test_size=storage.size(keys["test"]),
        overheads=_overall(result.overheads.to_dict()) if result.overheads is not None else None,
        reference_id=reference.id,
    )
    results, rows = reruns.keep_or_replace(run, _results(result, reference), defence)
    if defence in rows:  # a new accepted defence always has its baseline run (a re-run keeps the first one's)
        rows.append(BaselineRun(defence=defence))
    return results, rows


def _results(result: DefenceResult, reference: Reference) -> dict[str, Any]:
    """What a defence's run records and shows: its checks and figures, and the reference they were measured on."""
    return {**result.to_dict(), "reference_id": reference.id}


def _overall(overheads: dict[str, Any]) -> dict[str, Any]:
    """The overheads kept on the Defence row: the medians over cells (per-cell figures stay in the results)."""
    return {name: value for name, value in overheads.items() if name != "per_cell"}
