"""Rescoring: recompute every attack score of a round from the stored files and compare with the stored scores.

Read-only: it reports, it never changes a stored score (re-run a submission to record a new one).
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import groupby

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from app.evaluation.attack import SCORER_VERSION, AttackScore, score_attack
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Attack, Match, Round, Submission
from app.services import audit, competition, provenance, scores
from app.services.errors import NotFound
from app.storage import StorageError, get_storage

# Scores are recomputed by the same code from the same bytes: anything beyond float noise is a difference.
TOLERANCE = 1e-9
SCORES = ("accuracy", "top5_accuracy", "roc_auc")


class RescoreError(NotFound):
    """A rescore that cannot run: the round was never generated."""


@dataclass
class RescoreLine:
    """One stored attack score next to its recomputation, with what differs in its provenance."""

    attack: Attack
    recomputed: AttackScore | None = None
    problem: str | None = None  # why it could not be recomputed
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """Whether every recomputed score equals the stored one."""
        if self.recomputed is None:
            return False
        return all(
            math.isclose(getattr(self.attack, name), getattr(self.recomputed, name), rel_tol=0, abs_tol=TOLERANCE)
            for name in SCORES
        )


@dataclass
class RescoreReport:
    round: int
    lines: list[RescoreLine]

    @property
    def differences(self) -> list[RescoreLine]:
        return [line for line in self.lines if not line.same]


def rounds() -> list[int]:
    """The generated rounds, in order."""
    return list(db.session.scalars(sa.select(Round.number).order_by(Round.number)))


def rescore_round(number: int | None = None, actor: str | None = None) -> RescoreReport:
    """Recompute every attack score of round number (default: the current round) (one staff action).

    Raises RescoreError when the round was never generated.
    """
    number = competition.get_state().current_round if number is None else number
    if db.session.get(Round, number) is None:
        raise RescoreError(f"Round {number} was never generated: there is nothing to rescore.")
    attacks = db.session.scalars(
        sa.select(Attack)
        .join(Match, Match.id == Attack.match_id)
        .where(Match.round == number)
        .options(
            joinedload(Attack.match).joinedload(Match.defence),
            joinedload(Attack.match).joinedload(Match.attacker),
            joinedload(Attack.match).joinedload(Match.defender),
        )
        .order_by(Attack.submission_id, Attack.id)
    ).all()
    lines = []
    for submission_id, group in groupby(attacks, key=lambda a: a.submission_id):
        lines.extend(_rescore_upload(db.session.get(Submission, submission_id), list(group)))
    lines.sort(key=lambda line: (line.attack.match.attacker.name, line.attack.match.defender.name, line.attack.id))
    report = RescoreReport(number, lines)
    audit.record_now(
        actor, "rescore", None, {"round": number, "scores": len(lines), "differing": len(report.differences)}
    )
    return report


def _rescore_upload(submission: Submission, attacks: list[Attack]) -> list[RescoreLine]:
    """Score one stored upload again against the verification sets its attacks were scored on."""
    lines = {a.match.defender_team_id: RescoreLine(a) for a in attacks}
    storage, config = get_storage(), current_app.config
    try:
        if not submission.file_key:
            raise StorageError("its upload is no longer stored")
        with ExitStack() as paths:
            upload = paths.enter_context(storage.local_path(submission.file_key))
            verification = {
                team_id: paths.enter_context(storage.local_path(_verification_key(line.attack)))
                for team_id, line in lines.items()
            }
            upload_sha256 = provenance.file_sha256(upload)
            for team_id, line in lines.items():
                line.notes = _provenance_notes(line.attack, upload_sha256, verification[team_id])
            result = score_attack(
                upload,
                verification,
                nb_classes=config["NB_CLASSES"],
                max_uncompressed_bytes=config["MAX_UNCOMPRESSED_BYTES"],
            )
    except (StorageError, ValidationError, ValueError) as exc:
        problem = getattr(exc, "message", None) or str(exc)
        for line in lines.values():
            line.problem = f"not recomputed: {problem}"
        return list(lines.values())
    for team_id, line in lines.items():
        line.recomputed = result.scores.get(team_id)
        if line.recomputed is None:
            line.problem = "not recomputed: the upload no longer covers this target"
            continue
        before = scores.final_subset(line.attack)
        now = (line.recomputed.subset, line.recomputed.nb_captures)
        if before[0] != now[0] or before[1] not in (None, now[1]):
            was, then = scores.subset_label(*before), scores.subset_label(*now)
            line.notes.append(f"scored {scores.on_label(before[0], was)}, now {scores.on_label(now[0], then)}")
    return list(lines.values())


def _verification_key(attack: Attack) -> str:
    """The verification set the score was computed with: the recorded one, else the match's sets' (the round's
    fresh split of the pinned defence, or the defence's own)."""
    return (attack.provenance or {}).get("verification_key") or provenance.sets_for(attack.match).verification_key


def _provenance_notes(attack: Attack, upload_sha256: str, verification_path) -> list[str]:
    """How the files and settings now differ from those the stored score records having used."""
    recorded = attack.provenance
    if not recorded:
        return ["no provenance: scored before it was recorded"]
    sets = provenance.sets_for(attack.match)
    now = {
        "upload_sha256": upload_sha256,
        "verification_sha256": provenance.file_sha256(verification_path),
        "split_seed": sets.seed,
        "scorer_version": SCORER_VERSION,
        "nb_classes": current_app.config["NB_CLASSES"],
    }
    if recorded.get("verification_key") not in (None, sets.verification_key):
        now["verification_key"] = sets.verification_key
    words = {
        "verification_key": "the match's sets now hold another verification set (the recorded one was used)",
        "upload_sha256": "the stored upload changed",
        "verification_sha256": "the verification set changed",
        "split_seed": "the split seed of the match's sets changed",
        "scorer_version": f"scored by scorer version {recorded.get('scorer_version')}, now {SCORER_VERSION}",
        "nb_classes": f"scored with {recorded.get('nb_classes')} classes, now {now['nb_classes']}",
    }
    return [words[name] for name, value in now.items() if name in recorded and recorded[name] != value]
