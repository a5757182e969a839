"""The attack page: this round's targets, the download of their sets, and classification uploads."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from app.errors import form_page
from app.forms import UploadForm
from app.models import SubmissionKind
from app.services import attacks, competition, quotas, round_sets, uploads

bp = Blueprint("attack", __name__)


@bp.route("/attack/", methods=["GET", "POST"])
@login_required
def index():
    """Targets of this round, their download, and the upload form; 409 outside the Attack and Both phases."""
    form = UploadForm()
    uploads.check_may_upload(SubmissionKind.ATTACK, current_user)
    if request.args.get("download") and (sets := attacks.open_attack_sets(current_user)):
        stream, name = sets
        return send_file(stream, mimetype="application/zip", as_attachment=True, download_name=name, max_age=0)
    if form.validate_on_submit():
        submission = attacks.submit(current_user, form.file.data)
        return redirect(url_for("submissions.show", submission_id=submission.id))
    return _page(form), 422 if form.errors else 200


@form_page("attack.index")
def _page(form: UploadForm) -> str:
    state = competition.get_state()
    matches = attacks.targets(current_user.team_id, state.current_round)
    try:
        sets, preparing = round_sets.sets_of(matches), None
    except round_sets.SetsNotReady as exc:
        sets, preparing = {}, str(exc)
    return render_template(
        "attack/index.html",
        form=form,
        matches=matches,
        state=state,
        sets=sets,
        preparing=preparing,
        allowance=quotas.allowance(SubmissionKind.ATTACK, current_user),
    )
