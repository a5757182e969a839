"""Announcements under /admin/announcements: the staff write them; every page's banner shows the active ones."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import clock
from app.forms import AnnouncementForm, ConfirmForm
from app.routes.access import staff_only
from app.services import announcements

bp = Blueprint("announcements", __name__, url_prefix="/admin")
bp.before_request(staff_only)


@bp.route("/announcements", methods=["GET", "POST"])
def index():
    """Write an announcement; list recent ones."""
    form = AnnouncementForm()
    if form.validate_on_submit():
        try:
            announcements.create(form.title.data, form.body.data, form.expires_at.data)
        except announcements.AnnouncementError as exc:
            flash(str(exc), "error")
        else:
            flash("Announcement published; the e-mail to the students is on its way.", "success")
            return redirect(url_for("announcements.index"))
    status = 400 if form.errors or request.method == "POST" else 200
    return render_template(
        "schedule/announcements.html",
        form=form,
        rows=announcements.recent(),
        now=clock.now(),
        expire_form=ConfirmForm(),
    ), status


@bp.post("/announcements/<int:announcement_id>/expire")
def expire(announcement_id: int):
    """End an announcement now."""
    announcements.expire(announcement_id)
    flash("Announcement ended.", "success")
    return redirect(url_for("announcements.index"))
