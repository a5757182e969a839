"""Admin pages: phase, registration, round generation."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for

from app.forms import ConfirmForm, GenerateMatchesForm, PhaseForm, RegistrationToggleForm
from app.routes.access import staff_required
from app.services import competition, rounds

bp = Blueprint("admin", __name__)


@bp.route("/set_phase/", methods=["GET", "POST"])
@staff_required
def set_phase():
    """Switch the phase; open or close registration."""
    state = competition.get_state()
    form = PhaseForm(phase=state.phase.value)
    registration_form = RegistrationToggleForm(registration_open="1" if state.registration_open else "0")
    if form.validate_on_submit():
        competition.update_state(phase=competition.parse_phase(form.phase.data))
        flash(f"The phase is now {form.phase.data}.", "success")
        return redirect(url_for("admin.set_phase"))
    status = 400 if form.errors else 200
    return render_template("admin/set_phase.html", form=form, registration_form=registration_form), status


@bp.route("/set_registration/", methods=["POST"])
@staff_required
def set_registration():
    """Open or close registration of accounts and teams."""
    form = RegistrationToggleForm()
    if not form.validate_on_submit():
        abort(400, "Choose Open or Closed.")
    is_open = form.registration_open.data == "1"
    competition.update_state(registration_open=is_open)
    flash("Registration is now " + ("open." if is_open else "closed."), "success")
    return redirect(url_for("admin.set_phase"))


@bp.route("/generate_matches/", methods=["GET", "POST"])
@staff_required
def generate_matches():
    """Generate the next round's matches; GET shows who will play and who is left out."""
    per_team = current_app.config["MATCHES_PER_TEAM"]
    plan = rounds.plan_next_round(per_team)
    form = GenerateMatchesForm(round=plan.number)
    if form.validate_on_submit():
        try:
            matches = rounds.generate_round(form.round.data, per_team)
        except rounds.RoundConflict as exc:
            flash(str(exc), "error")
            return render_template("admin/generate_matches.html", form=form, plan=plan, **_close_form()), 409
        flash(f"Round {form.round.data} generated: {len(matches)} matches.", "success")
        return redirect(url_for("main.index"))
    status = 400 if form.errors else 200
    return render_template("admin/generate_matches.html", form=form, plan=plan, **_close_form()), status


def _close_form() -> dict:
    """The current round and, while it is open, the form that closes it."""
    current = competition.get_state().current_round
    closed_at = rounds.round_closed_at(current) if current else None
    return {"current_round": current, "closed_at": closed_at, "close_form": ConfirmForm() if current else None}


@bp.post("/close_round/<int:number>")
@staff_required
def close_round(number: int):
    """End the round now: its final scores (on the private subset) are published and mailed."""
    try:
        rounds.close_round(number)
    except rounds.RoundConflict as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.generate_matches"))
    flash(f"Round {number} is closed: its final scores (on the private subset) are published.", "success")
    return redirect(url_for("admin.generate_matches"))
