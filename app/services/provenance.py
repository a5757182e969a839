"""What an attack score was computed from, so that any score can be explained and recomputed later."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.evaluation.attack import SCORER_VERSION
from app.extensions import db
from app.models import Attack, Defence, Match, RoundSet
from app.services import round_sets

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def attack_provenance(
    upload_sha256: str,
    verification_path: Path,
    defence: Defence,
    nb_classes: int,
    sets: RoundSet | Defence | None = None,
) -> dict[str, Any]:
    """The provenance recorded with one Attack: the files scored (by sha256), the split seed, the scorer version.

    `sets` is what held the verification set scored on: the attacker's own set of the defence's pool (a RoundSet)
    or the defence's own split (the default); its key and seed are recorded, so that a rescore uses the same set.
    """
    sets = defence if sets is None else sets
    record = {
        "upload_sha256": upload_sha256,
        "verification_sha256": file_sha256(verification_path),
        "verification_key": sets.verification_key,
        "defence_id": defence.id,
        "split_seed": sets.seed,
        "nb_classes": nb_classes,
        "scorer_version": SCORER_VERSION,
    }
    if isinstance(sets, RoundSet):
        record["round_set_id"] = sets.id
    return record


def sets_for(match: Match) -> RoundSet | Defence:
    """What holds a match's sets now: the attacker's own set, its round's older shared split, else the defence."""
    return round_sets.sets_of([match]).get(match.id, match.defence)


def scores_of(submission_id: int) -> list[Attack]:
    """The scores an attack submission holds now, with their matches' defenders, by match."""
    return list(
        db.session.scalars(
            sa.select(Attack)
            .where(Attack.submission_id == submission_id)
            .options(joinedload(Attack.match).joinedload(Match.defender))
            .order_by(Attack.match_id)
        )
    )
