"""Uploads (defences, attacks), the attack sets to download, and submissions' status."""

from __future__ import annotations

from flask import abort, jsonify, request, send_file, url_for

from app.models import Submission, SubmissionKind
from app.routes.api import bp
from app.routes.api.auth import api_user, token_required
from app.services import attacks, submissions, uploads


@bp.get("/submissions/<int:submission_id>")
@token_required
def get_submission(submission_id: int):
    submission = submissions.visible_submission(submission_id, api_user())
    if submission is None:
        abort(404, "There is no such submission of your team.")
    return jsonify(submissions.submission_as_dict(submission, api_user(), with_figures=True))


def accepted(submission: Submission):
    """202 with the new submission's id and status URL (refusals are answered in errors.py)."""
    status_url = url_for("api.get_submission", submission_id=submission.id, _external=True)
    return jsonify(submission_id=submission.id, status_url=status_url), 202, {"Location": status_url}


@bp.post("/defences")
@token_required
def post_defence():
    """Upload a defence (multipart field `file`); 202 with the submission's id and status URL."""
    return accepted(uploads.create_submission(SubmissionKind.DEFENCE, api_user(), request.files.get("file")))


@bp.post("/attacks")
@token_required
def post_attack():
    """Upload a classification (multipart field `file`); 202 with the submission's id and status URL."""
    return accepted(attacks.submit(api_user(), request.files.get("file")))


@bp.get("/attack/sets")
@token_required
def get_attack_sets():
    """The zip of this round's targets' train and test sets."""
    sets = attacks.open_attack_sets(api_user())
    if sets is None:
        abort(404, "Your team has no target in the current round.")
    stream, name = sets
    return send_file(stream, mimetype="application/zip", as_attachment=True, download_name=name, max_age=0)
