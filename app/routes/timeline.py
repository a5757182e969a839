"""The staff's timeline under /admin/schedule: planned phase, registration and round changes; the next change."""

from __future__ import annotations

from flask import Blueprint, flash, has_request_context, redirect, render_template, request, url_for
from flask_login import current_user

from app import clock
from app.forms import ConfirmForm, ScheduledActionForm
from app.routes.access import staff_only
from app.services import announcements, schedule

bp = Blueprint("timeline", __name__, url_prefix="/admin")
bp.before_request(staff_only)


@bp.app_context_processor
def timeline_banner():
    """The next scheduled change and the active announcements, for every page's header."""
    if not has_request_context():  # e-mails rendered in a worker: no page header, no user
        return {}
    shown = announcements.active() if current_user.is_authenticated else []
    return {"next_change": schedule.next_change(), "announcements": shown, "describe": schedule.describe}


@bp.route("/schedule", methods=["GET", "POST"])
def index():
    """The timeline: pending and applied actions, and a form to plan one."""
    form = ScheduledActionForm()
    if form.validate_on_submit():
        try:
            row = schedule.add(form.action.data, form.value(), form.due_at.data)
        except schedule.ScheduleError as exc:
            flash(str(exc), "error")
        else:
            flash(f"Planned: {schedule.describe(row.action, row.value)} at {schedule.fmt(row.due_at)}.", "success")
            return redirect(url_for("timeline.index"))
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
def edit(action_id: int):
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
        except (schedule.ScheduleError, schedule.AlreadyApplied) as exc:
            flash(str(exc), "error")
        else:
            flash("Scheduled action saved.", "success")
            return redirect(url_for("timeline.index"))
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template("schedule/edit.html", form=form, row=row), status


@bp.post("/schedule/<int:action_id>/delete")
def delete(action_id: int):
    """Remove a pending action."""
    schedule.delete(action_id)
    flash("Scheduled action deleted.", "success")
    return redirect(url_for("timeline.index"))
