"""Defences: evaluate an uploaded trace in the worker and record the outcome."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from app.evaluation.defence import DefenceSettings, evaluate_defence
from app.extensions import db
from app.models import Defence, Submission, SubmissionStatus
from app.services import leaderboard_cache, mail, submissions


def latest_defence(team_id: int | None) -> Defence | None:
    """The team's latest accepted defence (the one the next round will pin)."""
    return db.session.scalar(sa.select(Defence).where(Defence.team_id == team_id).order_by(Defence.id.desc()))


def defence_settings(config: dict) -> DefenceSettings:
    return DefenceSettings(
        nb_classes=config["NB_CLASSES"],
        mean_nb_rep_per_class=config["MEAN_NB_REP_PER_CLASS"],
        deviation_nb_rep_per_class=config["DEVIATION_NB_REP_PER_CLASS"],
        rows_per_capture=config["ROWS_PER_CAPTURE"],
        nb_traces_to_classify=config["NB_TRACES_TO_CLASSIFY"],
        columns=tuple(config["DEFENCE_COLUMNS"]),
        max_uncompressed_bytes=config["MAX_UNCOMPRESSED_BYTES"],
    )


def run_evaluation(submission_id: int) -> None:
    """Evaluate a queued defence submission; every path ends in a recorded success or failure."""
    submission = submissions.start(submission_id)
    if submission is None:
        return
    storage = current_app.extensions["storage"]
    tmp_root = Path(current_app.config["TEMPORARY_UPLOAD_FOLDER"])
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=tmp_root, prefix=f"defence-{submission.id}-"))
    stored: list[str] = []
    try:
        with submissions.recording_failures(submission):
            _evaluate(submission, work, stored)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    submission = submissions.reload(submission)
    if submission.status is SubmissionStatus.SUCCEEDED:
        leaderboard_cache.clear_leaderboard()
    else:
        for key in stored:
            storage.delete(key)
    notify(submission)


def _evaluate(submission: Submission, work: Path, stored: list[str]) -> None:
    """Check, measure and split the upload; store the three sets and record the Defence (keys go to `stored`)."""
    storage = current_app.extensions["storage"]
    seed = secrets.randbits(62)
    with storage.local_path(submission.file_key) as upload:
        result = evaluate_defence(
            upload,
            work,
            team_id=submission.team_id,
            settings=defence_settings(current_app.config),
            seed=seed,
            progress=lambda stage: submissions.set_progress(submission, stage),
        )
    keys = {}
    for name, path in (
        ("train", result.train_path),
        ("test", result.test_path),
        ("verification", result.verification_path),
    ):
        # Keyed by submission: a new defence never overwrites the files a round pinned.
        keys[name] = f"defences/{submission.id}/{path.name}"
        storage.save(keys[name], path, move=True)
        stored.append(keys[name])
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
    )
    submissions.succeed(submission, result.to_dict(), defence)


def notify(submission: Submission) -> None:
    ok = submission.status.value == "succeeded"
    subject = f"[SRS] Defence #{submission.id} {'accepted' if ok else 'refused'}"
    mail.mail_team(submission.team, subject, "defence_result", submission=submission)
