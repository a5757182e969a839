"""Staff pages under /admin: the timeline, the audit log and announcements; the banner's next change."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.extensions import login
from app.forms import ConfirmForm
from app.schedule_forms import AnnouncementForm, ScheduledActionForm
from app.services import announcements, audit, clock, schedule

bp = Blueprint("admin_schedule", __name__, url_prefix="/admin")


@bp.before_request
def staff_only():
    """Anonymous users go to the login page; students get 403."""
    if not current_user.is_authenticated:
        return login.unauthorized()
    if not current_user.is_admin:
        abort(403, "This page is for the course staff.")
    return None


@bp.app_context_processor
def timeline_banner():
    """The next scheduled change and the active announcements, for every page's header."""
    if not has_request_context():  # e-mails rendered in a worker: no page header, no user
        return {}
    shown = announcements.active() if current_user.is_authenticated else []
    return {"next_change": schedule.next_change(), "announcements": shown, "describe": schedule.describe}


@bp.route("/schedule", methods=["GET", "POST"])
def schedule_index():
    """The timeline: pending and applied actions, and a form to plan one."""
    form = ScheduledActionForm()
    if form.validate_on_submit():
        try:
            row = schedule.add(form.action.data, form.value(), form.due_at.data)
        except schedule.ScheduleError as exc:
            flash(str(exc), "error")
        else:
            flash(f"Planned: {schedule.describe(row.action, row.value)} at {schedule.fmt(row.due_at)}.", "success")
            return redirect(url_for("admin_schedule.schedule_index"))
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template(
        "schedule/index.html",
        form=form,
        pending=schedule.pending(),
        history=schedule.history(),
        delete_form=ConfirmForm(),
        now=clock.now(),
    ), status


@bp.route("/schedule/<int:action_id>/edit", methods=["GET", "POST"])
def schedule_edit(action_id: int):
    """Change a pending action."""
    row = schedule.get_pending(action_id)
    form = ScheduledActionForm(
        action=row.action,
        phase=row.value if row.action == "phase" else "Attack",
        registration=row.value if row.action == "registration" else "closed",
        due_at=row.due_at,
    )
    if form.validate_on_submit():
        try:
            schedule.update(action_id, form.action.data, form.value(), form.due_at.data)
        except schedule.ScheduleError as exc:
            flash(str(exc), "error")
        else:
            flash("Scheduled action saved.", "success")
            return redirect(url_for("admin_schedule.schedule_index"))
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template("schedule/edit.html", form=form, row=row), status


@bp.post("/schedule/<int:action_id>/delete")
def schedule_delete(action_id: int):
    """Remove a pending action."""
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired: reload the page and try again.")
    schedule.delete(action_id)
    flash("Scheduled action deleted.", "success")
    return redirect(url_for("admin_schedule.schedule_index"))


@bp.get("/audit")
def audit_index():
    """The audit log, newest first, filtered by action."""
    action = (request.args.get("action") or "").strip()[:64] or None
    pager = audit.entries_page(action, request.args.get("page", 1, type=int), current_app.config["AUDIT_PER_PAGE"])
    return render_template("schedule/audit.html", pager=pager, action=action, actions=audit.actions())


@bp.get("/audit.csv")
def audit_csv():
    """The audit log as CSV (spreadsheet-safe)."""
    action = (request.args.get("action") or "").strip()[:64] or None
    return Response(
        audit.export_csv(action),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=srs-audit-log.csv"},
    )


@bp.route("/announcements", methods=["GET", "POST"])
def announcements_index():
    """Write an announcement; list recent ones."""
    form = AnnouncementForm()
    if form.validate_on_submit():
        try:
            announcements.create(form.title.data, form.body.data, form.expires_at.data)
        except announcements.AnnouncementError as exc:
            flash(str(exc), "error")
        else:
            flash("Announcement published; the e-mail to the students is on its way.", "success")
            return redirect(url_for("admin_schedule.announcements_index"))
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template(
        "schedule/announcements.html",
        form=form,
        rows=announcements.recent(),
        now=clock.now(),
        expire_form=ConfirmForm(),
    ), status


@bp.post("/announcements/<int:announcement_id>/expire")
def announcement_expire(announcement_id: int):
    """End an announcement now."""
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired: reload the page and try again.")
    announcements.expire(announcement_id)
    flash("Announcement ended.", "success")
    return redirect(url_for("admin_schedule.announcements_index"))
