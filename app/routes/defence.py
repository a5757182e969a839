"""Defence uploads."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.forms import UploadForm
from app.models import SubmissionKind
from app.services import defences, submissions

bp = Blueprint("defence", __name__)


@bp.route("/defence/", methods=["GET", "POST"])
@login_required
def upload():
    """Upload form for the team's defence; answers 409 outside the Defence and Both phases."""
    form = UploadForm()
    try:
        submissions.check_may_upload(SubmissionKind.DEFENCE, current_user)
        if form.validate_on_submit():
            submission = submissions.create_submission(SubmissionKind.DEFENCE, current_user, form.file.data)
            return redirect(url_for("submissions.show", submission_id=submission.id))
    except submissions.UploadRefused as exc:
        if exc.code in ("phase_closed", "no_team"):
            return render_template("defence/closed.html", message=exc.message), exc.status
        form.file.errors = [exc.message]
        return _form_page(form), exc.status
    return _form_page(form), 422 if form.errors else 200


def _form_page(form: UploadForm) -> str:
    return render_template("defence/upload.html", form=form, latest=defences.latest_defence(current_user.team_id))
