"""Defence uploads."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.forms import UploadForm
from app.models import Defence, SubmissionKind
from app.services import submissions

bp = Blueprint("defence", __name__)


@bp.route("/defence/", methods=["GET", "POST"])
@login_required
def upload():
    """Upload form for the team's defence; answers 409 outside the Defence and Both phases."""
    form = UploadForm()
    try:
        submissions.check_phase(SubmissionKind.DEFENCE)
        if current_user.team is None:
            raise submissions.UploadRefused(403, "no_team", "You must belong to a team to upload a defence.")
        if form.validate_on_submit():
            submission = submissions.create_submission(SubmissionKind.DEFENCE, current_user, form.file.data)
            return redirect(url_for("submissions.show", submission_id=submission.id))
    except submissions.UploadRefused as exc:
        if exc.status == 409 or exc.code == "no_team":
            return render_template("defence/closed.html", message=exc.message), exc.status
        form.file.errors = [exc.message]
        return render_template("defence/upload.html", form=form, latest=_latest(current_user.team_id)), exc.status
    status = 422 if form.errors else 200
    return render_template("defence/upload.html", form=form, latest=_latest(current_user.team_id)), status


def _latest(team_id: int | None) -> Defence | None:
    return db.session.scalar(sa.select(Defence).where(Defence.team_id == team_id).order_by(Defence.id.desc()))
