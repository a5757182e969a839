"""Defence uploads."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.errors import form_page
from app.forms import UploadForm
from app.models import SubmissionKind
from app.services import defences, quotas, uploads

bp = Blueprint("defence", __name__)


@bp.route("/defence/", methods=["GET", "POST"])
@login_required
def upload():
    """Upload form for the team's defence; answers 409 outside the Defence and Both phases (see errors.py)."""
    form = UploadForm()
    uploads.check_may_upload(SubmissionKind.DEFENCE, current_user)
    if form.validate_on_submit():
        submission = uploads.create_submission(SubmissionKind.DEFENCE, current_user, form.file.data)
        return redirect(url_for("submissions.show", submission_id=submission.id))
    return _page(form), 422 if form.errors else 200


@form_page("defence.upload")
def _page(form: UploadForm) -> str:
    return render_template(
        "defence/upload.html",
        form=form,
        latest=defences.latest_defence(current_user.team_id),
        allowance=quotas.allowance(SubmissionKind.DEFENCE, current_user),
    )
