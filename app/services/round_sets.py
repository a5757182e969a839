"""Fresh sets per round: a defence pinned again in a later round is split anew (new seed, capture ids and public
subset) by a worker, so that labels learned in one round do not carry over."""

from __future__ import annotations

import logging
import secrets

import sqlalchemy as sa
from flask import current_app

from app.evaluation.defence import resplit_defence
from app.extensions import db
from app.models import Defence, Match, RoundSet, utcnow
from app.services.defences import defence_settings
from app.services.queue import send_task
from app.storage import get_storage, scratch_dir

log = logging.getLogger(__name__)
TASK_NAME = "srs.prepare_round_set"


class SetsNotReady(Exception):
    """Some of a team's targets' sets for this round are still being prepared (answered 409)."""


def plan_sets(number: int, defence_ids: set[int]) -> list[RoundSet]:
    """RoundSet rows (not committed) for the defences of round `number` already pinned in an earlier round.

    A defence playing its first round keeps the split made when it was accepted: nobody has seen it yet.
    """
    earlier = set(
        db.session.scalars(
            sa.select(Match.defence_id).where(Match.round < number, Match.defence_id.in_(list(defence_ids)))
        )
    )
    return [RoundSet(round=number, defence_id=d, seed=secrets.randbits(62)) for d in sorted(defence_ids & earlier)]


def enqueue(round_sets: list[RoundSet]) -> int:
    """Hand each set to a worker and commit; one the broker did not take stays preparing with no enqueued_at
    (its round's downloads wait) until the sweeper sends it. Returns how many were sent."""
    sent = 0
    for round_set in round_sets:
        try:
            send_task(TASK_NAME, [round_set.id])
        except Exception as exc:  # broker down: the row stays preparing, the sweeper sends it later
            log.warning("could not enqueue round set %s: %s", round_set.id, exc)
            continue
        round_set.enqueued_at = utcnow()
        sent += 1
    db.session.commit()
    return sent


def sweep() -> dict[str, int]:
    """Send the sets whose task never reached the broker (Redis was down when the round was generated)."""
    never_sent = db.session.scalars(
        sa.select(RoundSet).where(RoundSet.status == RoundSet.PREPARING, RoundSet.enqueued_at.is_(None))
    ).all()
    return {"round_sets_requeued": enqueue(list(never_sent))}


def prepare(round_set_id: int) -> None:
    """Split the defence's stored upload again with the set's seed and store the three sets (in the worker)."""
    round_set = db.session.get(RoundSet, round_set_id)
    if round_set is None or round_set.status == RoundSet.READY:
        return
    defence: Defence = round_set.defence
    storage = get_storage()
    prefix = f"round_sets/{round_set.round}/{round_set.defence_id}"
    try:
        with scratch_dir(f"round-set-{round_set_id}-") as work, storage.local_path(defence.submission.file_key) as up:
            sets = resplit_defence(
                up,
                work,
                team_id=defence.team_id,
                settings=defence_settings(current_app.config),
                seed=round_set.seed,
            )
            keys = {}
            for name, path in (
                ("train", sets.train_path),
                ("test", sets.test_path),
                ("verification", sets.verification_path),
            ):
                keys[name] = f"{prefix}/{path.name}"
                storage.save(keys[name], path, move=True)
    except Exception as exc:
        log.exception("round set %s could not be prepared", round_set_id)
        db.session.rollback()
        round_set.status, round_set.error, round_set.finished_at = RoundSet.FAILED, str(exc)[:500], utcnow()
        db.session.commit()
        return
    round_set.train_key, round_set.test_key, round_set.verification_key = (
        keys["train"],
        keys["test"],
        keys["verification"],
    )
    round_set.train_size, round_set.test_size = storage.size(keys["train"]), storage.size(keys["test"])
    round_set.status, round_set.error, round_set.finished_at = RoundSet.READY, None, utcnow()
    db.session.commit()


def sets_of(matches: list[Match]) -> dict[int, RoundSet | Defence]:
    """Per match id, what holds its sets (train_key, test_key, verification_key, sizes): the round's fresh set
    of the pinned defence, or the defence itself when the round has none for it.

    Raises SetsNotReady when one of them is still being prepared (or failed: staff must look).
    """
    if not matches:
        return {}
    rows = db.session.scalars(
        sa.select(RoundSet).where(
            sa.tuple_(RoundSet.round, RoundSet.defence_id).in_([(m.round, m.defence_id) for m in matches])
        )
    )
    fresh = {(r.round, r.defence_id): r for r in rows}
    found: dict[int, RoundSet | Defence] = {}
    for m in matches:
        round_set = fresh.get((m.round, m.defence_id))
        if round_set is not None and round_set.status != RoundSet.READY:
            raise SetsNotReady(
                f"The sets of round {m.round} are being prepared (a fresh split of every defence that played "
                "before): try again in a minute."
                if round_set.status == RoundSet.PREPARING
                else f"A set of round {m.round} could not be prepared: the course staff has been told."
            )
        found[m.id] = round_set or m.defence
    return found
