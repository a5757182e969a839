"""Reading submissions: who may see one, a team's list, and the JSON form of one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import Submission, SubmissionKind, Team, User
from app.services import baseline, figures, scores


def visible_submission(submission_id: int, user: User) -> Submission | None:
    """The submission if user may see it (own team, or admin), else None (answered as 404)."""
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        return None
    if user.is_admin or (user.team_id is not None and submission.team_id == user.team_id):
        return submission
    return None


def team_submissions(team: Team, page: int = 1, per_page: int = 20):
    return db.paginate(
        sa.select(Submission).where(Submission.team_id == team.id).order_by(Submission.id.desc()),
        page=page,
        per_page=per_page,
        error_out=False,
    )


def submission_as_dict(
    submission: Submission, viewer: User | None = None, *, with_figures: bool = False
) -> dict[str, Any]:
    """The JSON form of a submission as viewer may read it (an attack's full scores only once its round closed,
    or for staff: see services/scores.py); with_figures adds the figures of its page (`leakage_by_cell` of a
    defence, `curves` of an attack: see services/figures.py), which only the one-submission answer carries."""

    def iso(dt):
        return dt.isoformat() + "Z" if dt else None

    staff = bool(viewer and viewer.is_admin)
    view = scores.score_view(submission, staff=staff)
    found = {
        "id": submission.id,
        "kind": submission.kind.value,
        "status": submission.status.value,
        "progress": submission.progress,
        "error": submission.error,
        "results": scores.results_for(submission, view, staff=staff),
        "created_at": iso(submission.created_at),
        "finished_at": iso(submission.finished_at),
        "original_filename": submission.original_filename,
        "size": submission.size,
        "sha256": submission.sha256,
        "round": submission.round,
        # The privacy estimate of an accepted defence (None otherwise); see baseline.as_dict.
        "baseline": (
            baseline.as_dict(baseline.for_submission(submission)) if submission.kind is SubmissionKind.DEFENCE else None
        ),
    }
    if with_figures:
        found["leakage_by_cell"] = figures.leakage_by_cell(submission)
        found["curves"] = figures.curves_as_api(figures.attack_target_curves(submission, view)) if view else None
    return found
