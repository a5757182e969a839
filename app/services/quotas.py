"""Upload quotas: at most N uploads of a kind per team in any rolling 24 hours; failed uploads do not count."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import Submission, SubmissionKind, SubmissionStatus, User, utcnow
from app.services import uploads

WINDOW = timedelta(hours=24)
SETTINGS = {SubmissionKind.DEFENCE: "DEFENCE_UPLOADS_PER_DAY", SubmissionKind.ATTACK: "ATTACK_UPLOADS_PER_DAY"}


def next_allowed(kind: SubmissionKind, team_id: int, now: datetime | None = None) -> datetime | None:
    """When the team may upload this kind again; None when it may now (or the quota is off)."""
    limit = current_app.config[SETTINGS[kind]]
    if limit <= 0:
        return None
    now = now or utcnow()
    # Queued, running and succeeded uploads count; a failed one gave the team nothing, so it does not.
    counted = list(
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
    if len(counted) < limit:
        return None
    # The oldest of the `limit` latest uploads leaving the window frees one place.
    return counted[-1] + WINDOW


def check_quota(kind: SubmissionKind, user: User) -> None:
    """Raise UploadRefused(429, "quota") with retry_after (seconds) when user's team used its quota; staff exempt."""
    if user.is_admin or user.team_id is None:
        return
    now = utcnow()
    allowed_at = next_allowed(kind, user.team_id, now)
    if allowed_at is None:
        return
    limit = current_app.config[SETTINGS[kind]]
    raise uploads.UploadRefused(
        429,
        "quota",
        f"Your team reached its quota of {limit} {kind.value} upload{'' if limit == 1 else 's'} in 24 hours "
        "(failed ones do not count): "
        f"the next one is allowed at {allowed_at:%Y-%m-%d %H:%M} UTC.",
        retry_after=max(1, math.ceil((allowed_at - now).total_seconds())),
    )
