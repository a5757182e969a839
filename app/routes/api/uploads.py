"""Submissions' status."""

from __future__ import annotations

from flask import abort, jsonify, request, url_for

from app.models import SubmissionKind
from app.routes.api import bp
from app.routes.api.auth import api_user, token_required
from app.services import submissions


@bp.get("/submissions/<int:submission_id>")
@token_required
def get_submission(submission_id: int):
    submission = submissions.visible_submission(submission_id, api_user())
    if submission is None:
        abort(404, "There is no such submission of your team.")
    return jsonify(submissions.submission_as_dict(submission))


def upload_response(create):
    """202 with the new submission's id and status URL, or the refusal as a JSON error."""
    try:
        submission = create()
    except submissions.UploadRefused as exc:
        retry = getattr(exc, "retry_after", None)  # set by quotas
        return jsonify(error=exc.code, message=exc.message), exc.status, {"Retry-After": str(retry)} if retry else {}
    status_url = url_for("api.get_submission", submission_id=submission.id, _external=True)
    return jsonify(submission_id=submission.id, status_url=status_url), 202, {"Location": status_url}


@bp.post("/defences")
@token_required
def post_defence():
    """Upload a defence (multipart field `file`); 202 with the submission's id and status URL."""
    return upload_response(
        lambda: submissions.create_submission(SubmissionKind.DEFENCE, api_user(), request.files.get("file"))
    )
