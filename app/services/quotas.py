"""Upload quotas: at most N uploads of a kind per team in any rolling 24 hours; failed uploads do not count.

check_quota is the cheap early refusal, before the file is read; claim_place is the final count, made under a
per-team lock in the transaction that inserts the upload's row, so that a burst of uploads cannot all pass it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app import clock
from app.extensions import db
from app.models import Submission, SubmissionKind, SubmissionStatus, Team, User
from app.services.errors import QuotaExceeded

WINDOW = timedelta(hours=24)
SETTINGS = {SubmissionKind.DEFENCE: "DEFENCE_UPLOADS_PER_DAY", SubmissionKind.ATTACK: "ATTACK_UPLOADS_PER_DAY"}


def limit_of(kind: SubmissionKind) -> int:
    """The quota of uploads of this kind per team and 24 hours; 0 when there is none."""
    return max(0, current_app.config[SETTINGS[kind]])


def _counted(kind: SubmissionKind, team_id: int, now: datetime, limit: int) -> list[datetime]:
    """Creation times of the team's latest uploads that count (at most limit), newest first."""
    # Queued, running and succeeded uploads count; a failed one gave the team nothing, so it does not.
    return list(
        db.session.scalars(
            sa.select(Submission.created_at)
            .where(
                Submission.team_id == team_id,
                Submission.kind == kind,
                Submission.status != SubmissionStatus.FAILED,
                Submission.created_at > now - WINDOW,
            )
            .order_by(Submission.created_at.desc())
            .limit(limit)
        )
    )


def next_allowed(kind: SubmissionKind, team_id: int, now: datetime | None = None) -> datetime | None:
    """When the team may upload this kind again; None when it may now (or the quota is off)."""
    limit = limit_of(kind)
    if limit == 0:
        return None
    counted = _counted(kind, team_id, now or clock.now(), limit)
    if len(counted) < limit:
        return None
    # The oldest of the `limit` latest uploads leaving the window frees one place.
    return counted[-1] + WINDOW


def is_exempt(user: User) -> bool:
    """Staff upload without a quota; a user without a team cannot upload at all (checked elsewhere)."""
    return user.is_admin or user.team_id is None


@dataclass(frozen=True)
class Allowance:
    """What is left of a team's quota of one kind now."""

    limit: int
    left: int
    next_allowed: datetime | None  # when left is 0: when the oldest counted upload leaves the window


def allowance(kind: SubmissionKind, user: User, now: datetime | None = None) -> Allowance | None:
    """What user's team may still upload of this kind; None when unlimited (quota off, or staff)."""
    limit = limit_of(kind)
    if limit == 0 or user.is_admin:
        return None
    if user.team_id is None:  # nothing counted yet: the quota a team starts with
        return Allowance(limit, limit, None)
    counted = _counted(kind, user.team_id, now or clock.now(), limit)
    full = len(counted) >= limit
    return Allowance(limit, limit - len(counted), counted[-1] + WINDOW if full else None)


def uploads_left(user: User) -> dict[str, int | None]:
    """Uploads left now by kind ("defence", "attack"), None when unlimited: as GET /api/v1/me answers."""
    now = clock.now()
    allowances = {kind.value: allowance(kind, user, now) for kind in SETTINGS}
    return {kind: None if left is None else left.left for kind, left in allowances.items()}


def check_quota(kind: SubmissionKind, user: User) -> None:
    """Raise QuotaExceeded (429, "quota") with retry_after (seconds) when user's team used its quota; staff exempt."""
    if is_exempt(user):
        return
    now = clock.now()
    allowed_at = next_allowed(kind, user.team_id, now)
    if allowed_at is None:
        return
    limit = limit_of(kind)
    raise QuotaExceeded(
        f"Your team reached its quota of {limit} {kind.value} upload{'' if limit == 1 else 's'} in 24 hours "
        "(failed ones do not count): "
        f"the next one is allowed at {allowed_at:%Y-%m-%d %H:%M} UTC.",
        retry_after=max(1, math.ceil((allowed_at - now).total_seconds())),
    )


def claim_place(kind: SubmissionKind, user: User) -> None:
    """check_quota again, under the team's lock, which the current transaction holds until it ends.

    Call it in the transaction that then inserts the upload's row, and commit (or roll back) soon: concurrent
    uploads of the team wait for that, then count the new row. Raises QuotaExceeded as check_quota.
    """
    if is_exempt(user) or limit_of(kind) == 0:
        return
    lock_team(user.team_id)
    check_quota(kind, user)


def lock_team(team_id: int) -> None:
    """Lock the team's row until the transaction ends: one upload of the team at a time gets past this.

    PostgreSQL: a row lock that does not block inserts referencing the team (FOR NO KEY UPDATE). SQLite: a
    write, which takes the database's write lock; it must come first in the transaction, since pysqlite opens
    the transaction only at the first write (a count made before it would be read outside the lock).
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(Team.id).where(Team.id == team_id).with_for_update(key_share=True))
    else:
        db.session.execute(
            sa.update(Team).where(Team.id == team_id).values(id=Team.id).execution_options(synchronize_session=False)
        )
