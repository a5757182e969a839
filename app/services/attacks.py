"""Attacks: the sets an attacker downloads, and the scoring of its classifications."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from contextlib import ExitStack
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, send_file
from sqlalchemy.orm import joinedload

from app.evaluation.attack import score_attack
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Attack, Match, Submission, SubmissionKind, SubmissionStatus, Team
from app.services import competition, leaderboard_cache, mail, submissions


def targets(team_id: int, round_number: int) -> list[Match]:
    """The matches in which team attacks in this round, with their defenders and pinned defences."""
    return list(
        db.session.scalars(
            sa.select(Match)
            .where(Match.round == round_number, Match.attacker_team_id == team_id)
            .options(joinedload(Match.defender), joinedload(Match.defence))
            .order_by(Match.defender_team_id)
        )
    )


def submit(user, upload) -> Submission:
    """Accept a classification upload of user's team for the current round (see submissions.create_submission).

    Raises UploadRefused 409 when the phase is closed or the team has no target this round.
    """
    submissions.check_may_upload(SubmissionKind.ATTACK, user)
    round_number = competition.get_state().current_round
    if not targets(user.team_id, round_number):
        raise submissions.UploadRefused(
            409, "no_target", f"Your team has no target in round {round_number}: there is nothing to attack."
        )
    return submissions.create_submission(SubmissionKind.ATTACK, user, upload)


def sets_key(team_id: int, round_number: int) -> str:
    return f"attack_sets/round_{round_number}/team_{team_id}_sets.zip"


def attack_sets(team_id: int, round_number: int) -> str | None:
    """Storage key of the zip of the targets' public sets, built once per attacker and round; None without targets.

    The zip holds team_{id}_train.csv.zip and team_{id}_test.csv.zip per target (id = the defender's team id)
    and nothing else. The files are already compressed, so they are stored as they are.
    """
    storage = current_app.extensions["storage"]
    key = sets_key(team_id, round_number)
    if storage.exists(key):
        return key
    matches = targets(team_id, round_number)
    if not matches:
        return None
    tmp_root = Path(current_app.config["TEMPORARY_UPLOAD_FOLDER"])
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="sets-") as work:
        path = Path(work) / "sets.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive, ExitStack() as files:
            for m in matches:
                for suffix, source_key in (("train", m.defence.train_key), ("test", m.defence.test_key)):
                    source = files.enter_context(storage.open(source_key))
                    with archive.open(f"team_{m.defender_team_id}_{suffix}.csv.zip", "w") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
        storage.save(key, path, move=True)
    return key


def send_attack_sets(team_id: int, round_number: int):
    """The zip of the targets' sets as a streamed file response, or None when the team has no target."""
    key = attack_sets(team_id, round_number)
    if key is None:
        return None
    return send_file(
        current_app.extensions["storage"].open(key),
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"round_{round_number}_attack_sets.zip",
        max_age=0,
    )


def run_evaluation(submission_id: int) -> None:
    """Score a queued attack submission against the verification sets of its round's targets."""
    submission = submissions.start(submission_id)
    if submission is None:
        return
    matches = {m.defender_team_id: m for m in targets(submission.team_id, submission.round)}
    with submissions.recording_failures(submission):
        _score(submission, matches)
    submission = submissions.reload(submission)
    if submission.status is SubmissionStatus.SUCCEEDED:
        leaderboard_cache.clear_leaderboard()
    notify(submission)


def _score(submission: Submission, matches: dict[int, Match]) -> None:
    """Score the upload against each covered target's verification set and record one Attack per match."""
    storage = current_app.extensions["storage"]
    if not matches:
        raise ValidationError(f"Your team has no target in round {submission.round}: there is nothing to score.")
    with ExitStack() as paths:
        verification = {
            team_id: paths.enter_context(storage.local_path(m.defence.verification_key))
            for team_id, m in matches.items()
        }
        submissions.set_progress(submission, "scoring")
        result = score_attack(
            paths.enter_context(storage.local_path(submission.file_key)),
            verification,
            nb_classes=current_app.config["NB_CLASSES"],
            max_uncompressed_bytes=current_app.config["MAX_UNCOMPRESSED_BYTES"],
        )
    attacks = [
        Attack(
            match_id=matches[team_id].id,
            submission_id=submission.id,
            accuracy=score.accuracy,
            top5_accuracy=score.top5_accuracy,
            roc_auc=score.roc_auc,
        )
        for team_id, score in result.scores.items()
    ]
    results = {
        "checks": [c.to_dict() for c in result.checks],
        "scores": [
            {**score.to_dict(), "team_name": matches[team_id].defender.name}
            for team_id, score in sorted(result.scores.items())
        ],
    }
    submissions.succeed(submission, results, *attacks)


def notify(submission: Submission) -> None:
    ok = submission.status.value == "succeeded"
    subject = f"[SRS] Attack #{submission.id} {'scored' if ok else 'refused'}"
    mail.mail_team(db.session.get(Team, submission.team_id), subject, "attack_result", submission=submission)
