"""Sets per attacker: every match of a round gets the pinned defence's test pool under its own capture ids, order
and public subset, so that attackers cannot pool predictions by id and no label learned in one round (or from a
friend's train set) scores another. The train set is always the defence's own: it never holds a pool capture.

A worker prepares each set when the round is generated; a download that finds one not ready yet prepares it itself
(relabelling a pool takes a fraction of a second), so students never wait on a busy queue.
"""

from __future__ import annotations

import logging
import secrets

import sqlalchemy as sa
from flask import current_app

from app import clock
from app.evaluation.defence import relabel_test_pool
from app.extensions import db
from app.models import Defence, Match, RoundSet
from app.services.errors import Conflict
from app.services.queue import send_task
from app.storage import get_storage, scratch_dir

log = logging.getLogger(__name__)
TASK_NAME = "srs.prepare_round_set"


class SetsNotReady(Conflict):
    """A set of a team's targets could not be prepared (the staff sees the error)."""


def plan_sets(matches: list[Match]) -> list[RoundSet]:
    """One RoundSet per match (not committed), each with its own seed."""
    return [
        RoundSet(round=m.round, defence_id=m.defence_id, match=m, seed=secrets.randbits(62))
        for m in sorted(matches, key=lambda m: (m.defence_id, m.attacker_team_id))
    ]


def enqueue(round_sets: list[RoundSet]) -> int:
    """Hand each set to a worker and commit; one the broker did not take stays preparing with no enqueued_at
    until the sweeper sends it (or a download prepares it). Returns how many were sent."""
    sent = 0
    for round_set in round_sets:
        try:
            send_task(TASK_NAME, [round_set.id])
        except Exception as exc:  # broker down: the row stays preparing, the sweeper sends it later
            log.warning("could not enqueue round set %s: %s", round_set.id, exc)
            continue
        round_set.enqueued_at = clock.now()
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
    """Write one attacker's test and verification sets from the defence's pool and record them (idempotent).

    The worker and a download may prepare the same set at once: each writes under its own keys and only the first
    to record its keys keeps them, so a set never changes once it is ready.
    """
    round_set = db.session.get(RoundSet, round_set_id)
    if round_set is None or round_set.status == RoundSet.READY or round_set.match is None:
        return
    defence: Defence = round_set.defence
    storage = get_storage()
    prefix = f"round_sets/{round_set.round}/match_{round_set.match_id}/{secrets.token_hex(4)}"
    keys: dict[str, str] = {}
    try:
        with (
            scratch_dir(f"round-set-{round_set_id}-") as work,
            storage.local_path(defence.test_key) as test,
            storage.local_path(defence.verification_key) as verification,
        ):
            sets = relabel_test_pool(
                test,
                verification,
                work,
                team_id=defence.team_id,
                seed=round_set.seed,
                public_fraction=current_app.config["PUBLIC_SCORE_FRACTION"],
            )
            for name, path in (("test", sets.test_path), ("verification", sets.verification_path)):
                keys[name] = f"{prefix}/{path.name}"
                storage.save(keys[name], path, move=True)
    except Exception as exc:
        log.exception("round set %s could not be prepared", round_set_id)
        db.session.rollback()
        for key in keys.values():  # half a set is no set
            storage.delete(key)
        _record(round_set_id, status=RoundSet.FAILED, error=str(exc)[:500])
        return
    if not _record(
        round_set_id,
        status=RoundSet.READY,
        error=None,
        train_key=defence.train_key,
        train_size=defence.train_size,
        test_key=keys["test"],
        test_size=storage.size(keys["test"]),
        verification_key=keys["verification"],
    ):
        for key in keys.values():  # another preparation recorded its files first: they are the set
            storage.delete(key)


def _record(round_set_id: int, **values) -> bool:
    """Record a preparation's outcome unless the set is already ready (compare-and-set); whether it was recorded."""
    done = db.session.execute(
        sa.update(RoundSet)
        .where(RoundSet.id == round_set_id, RoundSet.status != RoundSet.READY)
        .values(finished_at=clock.now(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return done == 1


def sets_of(matches: list[Match], *, prepare_missing: bool = False) -> dict[int, RoundSet | Defence]:
    """Per match id, what holds its sets (train_key, test_key, verification_key, sizes).

    A match has its own RoundSet (rounds generated since sets are per attacker); older matches have their
    round's shared fresh split, or else the defence's own sets. A set not ready yet is left out, or with
    prepare_missing, prepared here first. Raises SetsNotReady when one failed to be prepared.
    """
    if not matches:
        return {}
    rows = list(
        db.session.scalars(
            sa.select(RoundSet).where(
                sa.or_(
                    RoundSet.match_id.in_([m.id for m in matches]),
                    sa.and_(
                        RoundSet.match_id.is_(None),
                        sa.tuple_(RoundSet.round, RoundSet.defence_id).in_([(m.round, m.defence_id) for m in matches]),
                    ),
                )
            )
        )
    )
    if prepare_missing and any(r.match_id is not None and r.status != RoundSet.READY for r in rows):
        for row in [r for r in rows if r.match_id is not None and r.status != RoundSet.READY]:
            prepare(row.id)
        return sets_of(matches)
    own = {r.match_id: r for r in rows if r.match_id is not None}
    shared = {(r.round, r.defence_id): r for r in rows if r.match_id is None}
    found: dict[int, RoundSet | Defence] = {}
    for m in matches:
        held = own.get(m.id) or shared.get((m.round, m.defence_id))
        if held is None:
            found[m.id] = m.defence
        elif held.status == RoundSet.READY:
            found[m.id] = held
        elif held.status == RoundSet.FAILED:
            raise SetsNotReady(
                f"A set of round {m.round} could not be prepared: try again in a minute; if it persists, tell the "
                "course staff (their dashboard lists it with its error)."
            )
    return found


def exposed_defences() -> list[tuple[Defence, list[int]]]:
    """Defences whose test pool was handed out with labels, each with the rounds of its older shared splits (whose
    train sets held most of the pool), by defence id."""
    rows = db.session.execute(
        sa.select(RoundSet.defence_id, RoundSet.round)
        .where(RoundSet.match_id.is_(None), RoundSet.status == RoundSet.READY)
        .order_by(RoundSet.defence_id, RoundSet.round)
    ).all()
    rounds: dict[int, list[int]] = {}
    for defence_id, number in rows:
        rounds.setdefault(defence_id, []).append(number)
    return [(db.session.get(Defence, d), numbers) for d, numbers in rounds.items()]


def failed_sets() -> list[RoundSet]:
    """Sets whose last preparation failed (the next download or worker run tries again), for the staff."""
    query = sa.select(RoundSet).where(RoundSet.status == RoundSet.FAILED).order_by(RoundSet.round, RoundSet.id)
    return list(db.session.scalars(query))
