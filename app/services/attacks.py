"""Attacks: the sets an attacker downloads, and the scoring of its classifications."""

from __future__ import annotations

import shutil
import zipfile
from contextlib import ExitStack
from typing import Any, BinaryIO

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from app.evaluation.attack import score_attack
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Attack, Match, Submission, SubmissionKind, User
from app.services import competition, lifecycle, provenance, round_sets, scores, uploads
from app.storage import get_storage, scratch_dir


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


def submit(user: User, upload) -> Submission:
    """Accept a classification upload of user's team for the current round (see uploads.create_submission).

    Raises UploadRefused 409 when the phase is closed or the team has no target this round.
    """
    uploads.check_may_upload(SubmissionKind.ATTACK, user)
    round_number = competition.get_state().current_round
    if scores.is_closed(round_number):
        # Its final scores are published: one more upload would read hidden labels off them.
        raise uploads.UploadRefused(
            409, "round_closed", f"Round {round_number} is closed: attacks open again with the next round."
        )
    if not targets(user.team_id, round_number):
        raise uploads.UploadRefused(
            409, "no_target", f"Your team has no target in round {round_number}: there is nothing to attack."
        )
    return uploads.create_submission(SubmissionKind.ATTACK, user, upload)


def sets_key(team_id: int, round_number: int) -> str:
    return f"attack_sets/round_{round_number}/team_{team_id}_sets.zip"


def attack_sets(team_id: int, round_number: int) -> str | None:
    """Storage key of the zip of the targets' public sets, built once per attacker and round; None without targets.

    The zip holds team_{id}_train.csv.zip and team_{id}_test.csv.zip per target (id = the defender's team id)
    and nothing else. The files are already compressed, so they are stored as they are.
    """
    storage = get_storage()
    key = sets_key(team_id, round_number)
    if storage.exists(key):
        return key
    matches = targets(team_id, round_number)
    if not matches:
        return None
    try:
        sets = round_sets.sets_of(matches, prepare_missing=True)
    except round_sets.SetsNotReady as exc:
        raise uploads.UploadRefused(409, "sets_not_ready", str(exc)) from None
    with scratch_dir("sets-") as work:
        path = work / "sets.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive, ExitStack() as files:
            for m in matches:
                for suffix, source_key in (("train", sets[m.id].train_key), ("test", sets[m.id].test_key)):
                    source = files.enter_context(storage.open(source_key))
                    with archive.open(f"team_{m.defender_team_id}_{suffix}.csv.zip", "w") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
        storage.save(key, path, move=True)
    return key


def open_attack_sets(user: User) -> tuple[BinaryIO, str] | None:
    """The zip of the targets' sets of user's team this round, open for reading, with its download name.

    Raises UploadRefused when attacks are closed or user has no team; None when the team has no target.
    """
    uploads.check_may_upload(SubmissionKind.ATTACK, user)
    round_number = competition.get_state().current_round
    key = attack_sets(user.team_id, round_number)
    if key is None:
        return None
    return get_storage().open(key), f"round_{round_number}_attack_sets.zip"


def run_evaluation(submission_id: int, delivery: lifecycle.Delivery = lifecycle.Delivery()) -> None:
    """Score a queued attack submission against the verification sets of its round's targets."""
    lifecycle.run(submission_id, _score, delivery)


def _score(run: lifecycle.Run) -> tuple[dict[str, Any], list[Attack]]:
    """Score the upload against each covered target's verification set: the results and one Attack per match."""
    submission, storage = run.submission, get_storage()
    matches = {m.defender_team_id: m for m in targets(submission.team_id, submission.round)}
    if not matches:
        raise ValidationError(f"Your team has no target in round {submission.round}: there is nothing to score.")
    sets = round_sets.sets_of(list(matches.values()), prepare_missing=True)  # ready once the sets were downloaded
    with ExitStack() as paths:
        verification = {
            team_id: paths.enter_context(storage.local_path(sets[m.id].verification_key))
            for team_id, m in matches.items()
        }
        upload = paths.enter_context(storage.local_path(submission.file_key))
        nb_classes = current_app.config["NB_CLASSES"]
        run.progress("scoring")
        result = score_attack(
            upload,
            verification,
            nb_classes=nb_classes,
            max_uncompressed_bytes=current_app.config["MAX_UNCOMPRESSED_BYTES"],
        )
        upload_sha256 = provenance.file_sha256(upload)  # of the bytes scored, not only of those received
        sources = {
            team_id: provenance.attack_provenance(
                upload_sha256,
                verification[team_id],
                matches[team_id].defence,
                nb_classes,
                sets[matches[team_id].id],
            )
            for team_id in result.scores
        }
    public = result.public_scores
    attacks = [
        Attack(
            match_id=matches[team_id].id,
            submission_id=submission.id,
            accuracy=score.accuracy,
            top5_accuracy=score.top5_accuracy,
            roc_auc=score.roc_auc,
            # Which captures the final scores count (the private ones, or all of a set without a public subset).
            provenance=sources[team_id] | {"subset": score.subset, "nb_captures": score.nb_captures},
            intervals=score.intervals,
            public_scores={name: getattr(public[team_id], name) for name in Attack.SCORE_NAMES}
            | {"intervals": public[team_id].intervals, "nb_captures": public[team_id].nb_captures}
            if team_id in public
            else None,
        )
        for team_id, score in result.scores.items()
    ]
    # Only the public-subset scores are recorded with the submission (what students read while the round is
    # open); the final scores (private captures) live in the Attack rows, shown once it closes (services/scores.py).
    results = {
        "checks": [c.to_dict() for c in result.checks],
        "scores": [
            _public_row(team_id, public.get(team_id), score, matches)
            for team_id, score in sorted(result.scores.items())
        ],
    }
    return results, attacks


def _public_row(team_id: int, public, final, matches: dict[int, Match]) -> dict[str, Any]:
    """A target's public-subset scores (all None when its set has no public subset: shown when the round closes),
    with the size of its test set and of the subset its final scores count."""
    row = {"team_id": team_id, "team_name": matches[team_id].defender.name, "subset": scores.PUBLIC}
    row.update({name: getattr(public, name) if public else None for name in Attack.SCORE_NAMES})
    nb_public = public.nb_captures if public else 0
    row.update(nb_captures=public.nb_captures if public else None, nb_test_captures=final.nb_captures + nb_public)
    row["nb_final_captures"] = final.nb_captures
    row["intervals"] = public.intervals if public else None
    return row
