"""Defences: evaluate an uploaded trace in the worker; the team's latest accepted defence."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.evaluation.defence import DefenceSettings, evaluate_defence
from app.extensions import db
from app.models import Defence, Submission
from app.services import lifecycle
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


def defence_settings(config: dict) -> DefenceSettings:
    return DefenceSettings(
        nb_classes=config["NB_CLASSES"],
        mean_nb_rep_per_class=config["MEAN_NB_REP_PER_CLASS"],
        deviation_nb_rep_per_class=config["DEVIATION_NB_REP_PER_CLASS"],
        rows_per_capture=config["ROWS_PER_CAPTURE"],
        nb_traces_to_classify=config["NB_TRACES_TO_CLASSIFY"],
        columns=tuple(config["DEFENCE_COLUMNS"]),
        max_uncompressed_bytes=config["MAX_UNCOMPRESSED_BYTES"],
        public_score_fraction=config["PUBLIC_SCORE_FRACTION"],
    )


def run_evaluation(submission_id: int, delivery: lifecycle.Delivery = lifecycle.Delivery()) -> None:
    """Evaluate a queued defence submission; every path ends in a recorded success or failure."""
    lifecycle.run(submission_id, _evaluate, delivery)


def _evaluate(run: lifecycle.Run) -> tuple[dict[str, Any], list[Defence]]:
    """Check, measure and split the upload; store the three sets under the run's keys; the Defence to record."""
    submission, storage = run.submission, get_storage()
    seed = secrets.randbits(62)
    with storage.local_path(submission.file_key) as upload:
        result = evaluate_defence(
            upload,
            run.work,
            team_id=submission.team_id,
            settings=defence_settings(current_app.config),
            seed=seed,
            progress=run.progress,
        )
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
    return result.to_dict(), [defence]
