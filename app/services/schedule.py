"""The competition's timeline: staff actions planned ahead, applied once each by the beat task."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app import clock
from app.extensions import db
from app.models import Phase, ScheduledAction, SubmissionKind
from app.services import audit, competition, rounds
from app.services.errors import Conflict, Invalid, NotFound

log = logging.getLogger(__name__)

ACTIONS = {
    "phase": "Set the phase",
    "registration": "Open or close registration",
    "round": "Generate the next round",
}
REGISTRATION_VALUES = ("open", "closed")


class ScheduleError(Invalid):
    """A planned action that cannot be saved: an unknown action or value."""


class AlreadyApplied(Conflict):
    """A planned action that was already applied: it can no longer change."""


@dataclass
class NextChange:
    """The next planned change, as shown in every page's banner."""

    due_at: datetime
    label: str


def describe(action: str, value: str) -> str:
    """A sentence-like label: 'Phase → Attack', 'Registration closed', 'Round generated'."""
    if action == "phase":
        return f"Phase → {value}"
    if action == "registration":
        return f"Registration {value}"
    return "Next round generated"


def validate(action: str, value: str | None) -> str:
    """The normalised value for action; ScheduleError naming the choices otherwise."""
    if action not in ACTIONS:
        raise ScheduleError(f"Unknown action {action!r}: choose one of {', '.join(ACTIONS)}.")
    value = (value or "").strip()
    if action == "phase":
        try:
            return competition.parse_phase(value).value
        except ValueError as exc:
            raise ScheduleError(str(exc)) from exc
    if action == "registration":
        if value.lower() not in REGISTRATION_VALUES:
            raise ScheduleError(f"Registration must become 'open' or 'closed', not {value!r}.")
        return value.lower()
    return ""


def pending() -> list[ScheduledAction]:
    """Actions not applied yet, soonest first."""
    query = sa.select(ScheduledAction).where(ScheduledAction.applied_at.is_(None))
    return list(db.session.scalars(query.order_by(ScheduledAction.due_at, ScheduledAction.id)))


def history(limit: int = 50) -> list[ScheduledAction]:
    """Applied actions, latest first."""
    query = sa.select(ScheduledAction).where(ScheduledAction.applied_at.is_not(None))
    return list(db.session.scalars(query.order_by(ScheduledAction.applied_at.desc()).limit(limit)))


def next_change() -> NextChange | None:
    """The soonest pending action, or None."""
    query = (
        sa.select(ScheduledAction)
        .where(ScheduledAction.applied_at.is_(None))
        .order_by(ScheduledAction.due_at, ScheduledAction.id)
        .limit(1)
    )
    row = db.session.scalars(query).first()
    return NextChange(row.due_at, describe(row.action, row.value)) if row else None


def add(action: str, value: str | None, due_at: datetime, actor=None) -> ScheduledAction:
    """Plan an action at due_at (naive UTC) and commit; a time in the past is applied at the next beat."""
    value = validate(action, value)
    _, author = audit._actor(actor)
    row = ScheduledAction(action=action, value=value, due_at=due_at, created_by=author, created_at=clock.now())
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "schedule-add", None, as_dict(row), target=f"scheduled action {row.id}")
    db.session.commit()
    return row


def get_pending(action_id: int) -> ScheduledAction:
    """A pending action; NotFound if missing, AlreadyApplied if already applied."""
    row = db.session.get(ScheduledAction, action_id)
    if row is None:
        raise NotFound(f"There is no scheduled action {action_id}.")
    if row.applied_at is not None:
        raise AlreadyApplied(f"Scheduled action {action_id} was already applied at {fmt(row.applied_at)}.")
    return row


def update(action_id: int, action: str, value: str | None, due_at: datetime, actor=None) -> ScheduledAction:
    """Change a pending action and commit."""
    row = get_pending(action_id)
    before = as_dict(row)
    row.action, row.value, row.due_at = action, validate(action, value), due_at
    audit.record(actor, "schedule-edit", before, as_dict(row), target=f"scheduled action {row.id}")
    db.session.commit()
    return row


def delete(action_id: int, actor=None) -> None:
    """Remove a pending action and commit."""
    row = get_pending(action_id)
    audit.record(actor, "schedule-delete", as_dict(row), None, target=f"scheduled action {row.id}")
    db.session.delete(row)
    db.session.commit()


def claim(action_id: int, at: datetime) -> bool:
    """Mark the action applied, atomically: True for exactly one caller, however many beats race for it.

    The conditional UPDATE takes the row's write lock; a second claimer waits for the first transaction and
    then matches no row. The caller applies the action in the same transaction, so a crash undoes both.
    """
    result = db.session.execute(
        sa.update(ScheduledAction)
        .where(ScheduledAction.id == action_id, ScheduledAction.applied_at.is_(None))
        .values(applied_at=at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def apply_due() -> list[int]:
    """Apply every pending action whose time has come, oldest first, each exactly once; returns their ids."""
    now = clock.now()
    competition.get_state()  # created (and committed) first on a fresh database, never mid-claim
    due = db.session.scalars(
        sa.select(ScheduledAction.id)
        .where(ScheduledAction.applied_at.is_(None), ScheduledAction.due_at <= now)
        .order_by(ScheduledAction.due_at, ScheduledAction.id)
    ).all()
    db.session.rollback()  # end the read transaction: each action gets its own
    applied = []
    for action_id in due:
        if _apply_one(action_id, now):
            applied.append(action_id)
    return applied


def _apply_one(action_id: int, now: datetime) -> bool:
    if not claim(action_id, now):
        db.session.rollback()
        return False
    row = db.session.get(ScheduledAction, action_id)
    db.session.refresh(row)
    late = now - row.due_at > timedelta(seconds=current_app.config["SCHEDULE_LATE_SECONDS"])
    note = f"scheduled action {row.id}, due {fmt(row.due_at)}"
    if late:
        note = f"applied late: {note}"
    try:
        _perform(row, note)  # commits the claim, the change and its audit entry together
    except (rounds.RoundConflict, ValueError) as exc:
        db.session.rollback()
        # Still exactly once: record the failure against a fresh claim rather than retrying every beat.
        if not claim(action_id, now):
            row = db.session.get(ScheduledAction, action_id)
            if row.applied_at != now or row.outcome is not None:  # another beat has it
                db.session.rollback()
                return False
        row = db.session.get(ScheduledAction, action_id)
        row.outcome = f"failed: {exc}"[:255]
        audit.record(
            audit.SCHEDULER,
            f"{row.action}-failed",
            None,
            None,
            target=describe(row.action, row.value),
            note=f"{note}; {exc}"[:255],
        )
        db.session.commit()
        log.warning("scheduled action %s failed: %s", action_id, exc)
        return True
    log.info("applied scheduled action %s (%s)%s", action_id, describe(row.action, row.value), " late" if late else "")
    return True


def _perform(row: ScheduledAction, note: str) -> None:
    row.outcome = "applied late" if note.startswith("applied late") else "applied"
    if row.action == "phase":
        competition.update_state(phase=Phase(row.value), actor=audit.SCHEDULER, note=note)
    elif row.action == "registration":
        competition.update_state(registration_open=row.value == "open", actor=audit.SCHEDULER, note=note)
    else:
        number = competition.get_state().current_round + 1
        rounds.generate_round(number, current_app.config["MATCHES_PER_TEAM"], actor=audit.SCHEDULER, note=note)


def last_closed_at(kind: SubmissionKind) -> datetime | None:
    """When uploads of this kind last closed (the latest phase change that closed them), from the audit log."""
    allowed = (lambda p: p.allows_defence) if kind is SubmissionKind.DEFENCE else (lambda p: p.allows_attack)
    for entry in audit.last_entries("phase"):
        try:
            before, after = Phase(entry.before["phase"]), Phase(entry.after["phase"])
        except (KeyError, TypeError, ValueError):
            continue
        if allowed(before) and not allowed(after):
            return entry.created_at
    return None


def fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def as_dict(row: ScheduledAction) -> dict:
    return {
        "id": row.id,
        "action": row.action,
        "value": row.value,
        "label": describe(row.action, row.value),
        "due_at": row.due_at.isoformat() + "Z",
        "created_by": row.created_by,
        "applied_at": row.applied_at.isoformat() + "Z" if row.applied_at else None,
        "outcome": row.outcome,
    }
