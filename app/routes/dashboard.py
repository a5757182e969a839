"""The staff dashboard under /admin/: teams, submissions, stored files, CSV exports, password resets."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from app.extensions import db
from app.forms import ConfirmForm
from app.models import Submission, User
from app.routes.access import staff_required
from app.services import dashboard, exports, password_reset, scores

bp = Blueprint("dashboard", __name__, url_prefix="/admin")


@bp.route("/")
@staff_required
def index():
    """Teams with members, latest defence, and matches and scores per round; `q` searches."""
    q = request.args.get("q", "")
    pager = dashboard.search_teams(q, page=request.args.get("page", 1, type=int))
    return render_template("dashboard/index.html", q=q, pager=pager, lines=dashboard.team_lines(pager.items))


@bp.route("/submissions/")
@staff_required
def submissions():
    """Every submission, newest first; filters kind, status, team, round."""
    filters = dashboard.SubmissionFilter(
        kind=request.args.get("kind", ""),
        status=request.args.get("status", ""),
        team=request.args.get("team", ""),
        round=request.args.get("round", type=int),
    )
    pager = dashboard.submissions_page(filters, page=request.args.get("page", 1, type=int))
    return render_template(
        "dashboard/submissions.html",
        pager=pager,
        filters=filters,
        kinds=dashboard.KINDS,
        statuses=dashboard.STATUSES,
    )


@bp.route("/submissions/<int:submission_id>")
@staff_required
def submission(submission_id: int):
    """One submission with its checks, timings, attempts, error and stored files."""
    found = db.get_or_404(Submission, submission_id, description="There is no such submission.")
    return render_template(
        "dashboard/submission.html",
        submission=found,
        files=dashboard.submission_files(found),
        score_view=scores.score_view(found, staff=True),
    )


@bp.route("/submissions/<int:submission_id>/files/<which>")
@staff_required
def submission_file(submission_id: int, which: str):
    """Download a submission's upload or a defence's train, test or verification set."""
    found = dashboard.open_submission_file(submission_id, which)
    if found is None:
        abort(404, "There is no such file for this submission.")
    handle, name = found
    return send_file(handle, mimetype="application/zip", as_attachment=True, download_name=name)


@bp.route("/exports/")
@staff_required
def exports_page():
    """Links to every CSV export."""
    return render_template("dashboard/exports.html", names=exports.NAMES)


@bp.route("/exports/<name>.csv")
@staff_required
def export_csv(name: str):
    """One export as CSV: `leaderboard`, `submissions` or `matches`, `?round=N` for one round."""
    try:
        table = exports.export(name, request.args.get("round", type=int))
    except exports.ExportError as exc:
        abort(exc.status, exc.message)
    return Response(
        table.as_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{table.filename}"', "Cache-Control": "no-store"},
    )


@bp.post("/users/<int:user_id>/reset-password")
@staff_required
def reset_password(user_id: int):
    """Send the user a password-reset link (the password is never shown)."""
    user = db.get_or_404(User, user_id, description="There is no such user.")
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired or lacks its security token: reload the page and try again.")
    password_reset.send_reset_link(user, requested_by=current_user)
    flash(f"A password-reset link was sent to {user.username}'s e-mail address.", "success")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("dashboard.index"))


def _same_site(target: str | None) -> bool:
    return bool(target) and target.startswith(request.host_url)
