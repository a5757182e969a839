"""The staff dashboard under /admin/: teams, submissions, stored files, re-runs, rescoring, similar uploads, CSV
exports, password resets."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from app.extensions import db
from app.forms import ConfirmForm, ReferenceForm, RerunFailedForm, RescoreForm
from app.models import Submission, User
from app.routes.access import staff_required
from app.routes.params import query_int
from app.services import (
    audit,
    baseline,
    competition,
    dashboard,
    exports,
    password_reset,
    provenance,
    references,
    reruns,
    rescore,
    round_sets,
    rounds,
    scores,
    similarity,
)

bp = Blueprint("dashboard", __name__, url_prefix="/admin")


@bp.route("/")
@staff_required
def index():
    """Teams with members, latest defence, and matches and scores per round; `q` searches."""
    q = request.args.get("q", "")
    pager = dashboard.search_teams(q, page=query_int("page", 1, minimum=1))
    return render_template(
        "dashboard/index.html",
        q=q,
        pager=pager,
        lines=dashboard.team_lines(pager.items),
        failed_sets=round_sets.failed_sets(),
    )


@bp.route("/submissions/")
@staff_required
def submissions():
    """Every submission, newest first; filters kind, status, team, round."""
    filters = dashboard.SubmissionFilter(
        kind=request.args.get("kind", ""),
        status=request.args.get("status", ""),
        team=request.args.get("team", ""),
        round=query_int("round"),
    )
    pager = dashboard.submissions_page(filters, page=query_int("page", 1, minimum=1))
    return render_template(
        "dashboard/submissions.html",
        pager=pager,
        filters=filters,
        kinds=dashboard.KINDS,
        statuses=dashboard.STATUSES,
        rerun_form=RerunFailedForm(),
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
        runs=reruns.history(found.id),
        scores=provenance.scores_of(found.id),
        rerun_form=ConfirmForm(),
        baseline=baseline.for_submission(found),
        score_view=scores.score_view(found, staff=True),
    )


@bp.post("/submissions/<int:submission_id>/rerun")
@staff_required
def rerun(submission_id: int):
    """Evaluate one submission again; its earlier run goes to its history."""
    db.get_or_404(Submission, submission_id, description="There is no such submission.")
    reruns.rerun_submission(submission_id, current_user.username)
    flash(f"Submission #{submission_id} is queued again; its earlier result is kept in its history.", "success")
    return redirect(url_for("dashboard.submission", submission_id=submission_id))


@bp.post("/submissions/rerun-failed")
@staff_required
def rerun_failed():
    """Evaluate again every submission that failed at or after a date."""
    form = RerunFailedForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400, "The form expired or lacks its security token: reload the page and try again.")
        abort(400, "Give the date as YYYY-MM-DD, optionally followed by a time HH:MM (UTC).")
    since = reruns.parse_since(form.since.data)
    done = reruns.rerun_failed_since(since, current_user.username)
    message = f"{len(done.rerun)} submissions that failed since {since:%Y-%m-%d %H:%M} UTC are queued again."
    if done.skipped:
        message += " Skipped: " + "; ".join(f"#{s.id}: {reason}" for s, reason in done.skipped)
    flash(message, "success" if not done.skipped else "error")
    return redirect(url_for("dashboard.submissions", status="queued"))


@bp.route("/rescore/", methods=["GET", "POST"])
@staff_required
def rescore_page():
    """Recompute a round's attack scores from the stored files and show the differences."""
    form = RescoreForm()
    form.round.choices = [(n, f"Round {n}") for n in rescore.rounds()]
    if request.method == "GET":
        form.round.data = competition.get_state().current_round
    report = None
    if request.method == "POST":
        if not form.validate_on_submit():
            if "csrf_token" in form.errors:
                abort(400, "The form expired or lacks its security token: reload the page and try again.")
            abort(400, "Choose a round that was generated.")
        report = rescore.rescore_round(form.round.data)
    return render_template("dashboard/rescore.html", form=form, report=report)


@bp.route("/submissions/<int:submission_id>/files/<which>")
@staff_required
def submission_file(submission_id: int, which: str):
    """Download a submission's upload or a defence's train, test or verification set."""
    found = dashboard.open_submission_file(submission_id, which)
    if found is None:
        abort(404, "There is no such file for this submission.")
    handle, name = found
    audit.record_now(None, "download-file", None, {"submission": submission_id, "file": which}, target=name)
    return send_file(handle, mimetype="application/zip", as_attachment=True, download_name=name)


@bp.route("/reference", methods=["GET", "POST"])
@staff_required
def reference():
    """The reference of undefended traffic defences are measured against; upload a file to replace it."""
    form = ReferenceForm()
    status = 200
    if form.validate_on_submit():
        try:
            row = references.set_reference_upload(form.file.data, current_user)
        except references.ReferenceRefused as exc:
            form.file.errors.append(exc.message)
            status = exc.status
        else:
            flash(f"Reference #{row.id} ({row.source}, {row.nb_cells} cells) is now current.", "success")
            return redirect(url_for("dashboard.reference"))
    elif form.errors:
        status = 400
    return render_template("dashboard/reference.html", form=form, **dashboard.reference_page()), status


@bp.route("/similarity/")
@staff_required
def similarity_page():
    """Pairs of uploads of a round that look copied, most suspicious first (`all=1`: every pair compared)."""
    current = competition.get_state().current_round
    number = query_int("round")
    everything = request.args.get("all") in ("1", "true")
    view, problem = None, None
    if current:
        try:
            view = similarity.round_similarity(number, everything=everything)
        except rounds.NoSuchRound as exc:
            problem = str(exc)
    return render_template(
        "dashboard/similarity.html",
        view=view,
        problem=problem,
        rounds=list(range(1, current + 1)),
        everything=everything,
        note=similarity.EXAMPLE_SCRIPT_NOTE,
    ), (404 if problem else 200)


@bp.route("/exports/")
@staff_required
def exports_page():
    """Links to every CSV export."""
    return render_template("dashboard/exports.html", names=exports.NAMES)


@bp.route("/exports/<name>.csv")
@staff_required
def export_csv(name: str):
    """One export as CSV: `leaderboard`, `submissions`, `matches` or `similarity`, `?round=N` for one round."""
    table = exports.export(name, query_int("round"))
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
    password_reset.send_reset_link(user, requested_by=current_user)
    flash(f"A password-reset link was sent to {user.username}'s e-mail address.", "success")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("dashboard.index"))


def _same_site(target: str | None) -> bool:
    return bool(target) and target.startswith(request.host_url)
