"""The audit log: every staff action with who, when, what, and the values before and after."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from flask_login import current_user

from app import clock
from app.csv_safe import to_csv
from app.extensions import db
from app.models import AuditEntry, User

CLI = "cli"
SCHEDULER = "scheduler"
CSV_COLUMNS = ["id", "when_utc", "actor", "action", "target", "before", "after", "note"]


def _actor(actor: User | str | None) -> tuple[int | None, str]:
    """(user id, name) of the actor; None means whoever made this request (token user or logged-in user)."""
    if actor is None and has_request_context():
        actor = g.get("api_user") or (current_user._get_current_object() if current_user.is_authenticated else None)
    if isinstance(actor, User):
        return actor.id, actor.username
    return None, actor or "system"


def record(
    actor: User | str | None,
    action: str,
    before: Any = None,
    after: Any = None,
    target: str | None = None,
    note: str | None = None,
) -> AuditEntry:
    """Add an entry to the session: it is committed with the action it describes (the caller commits)."""
    actor_id, actor_name = _actor(actor)
    entry = AuditEntry(
        created_at=clock.now(),
        actor_id=actor_id,
        actor_name=actor_name[:64],
        action=action,
        target=target,
        before=before,
        after=after,
        note=note[:255] if note else None,
    )
    db.session.add(entry)
    return entry


def record_now(actor: User | str | None, action: str, before: Any = None, after: Any = None, **kw) -> None:
    """Record and commit at once, for actions that committed on their own (flush, create-admin)."""
    record(actor, action, before, after, **kw)
    db.session.commit()


def _query(action: str | None) -> sa.Select:
    query = sa.select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if action:
        query = query.where(AuditEntry.action == action)
    return query


def entries_page(action: str | None, page: int, per_page: int):
    """A page of entries, newest first, optionally only one action."""
    return db.paginate(_query(action), page=page, per_page=per_page, error_out=False)


def actions() -> list[str]:
    """Every action name present in the log, for the filter."""
    return list(db.session.scalars(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def _rows(entries: Iterable[AuditEntry]) -> Iterable[list]:
    for e in entries:
        yield [
            e.id,
            e.created_at.isoformat(sep=" ", timespec="seconds"),
            e.actor_name,
            e.action,
            e.target or "",
            _json(e.before),
            _json(e.after),
            e.note or "",
        ]


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True)


def export_csv(action: str | None = None) -> str:
    """The log (newest first) as CSV text, every cell neutralised for spreadsheets."""
    return to_csv(CSV_COLUMNS, _rows(db.session.scalars(_query(action))))


def last_entries(action: str, limit: int = 50) -> list[AuditEntry]:
    return list(db.session.scalars(_query(action).limit(limit)))
