"""Forgotten passwords: ask for a reset link, then choose a new password through it."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_user

from app import ratelimits
from app.forms import ForgotPasswordForm, ResetPasswordForm
from app.security import keep_private
from app.services import password_reset

bp = Blueprint("password", __name__)


per_email = ratelimits.budget(
    "PASSWORD_RESET_LIMIT_PER_EMAIL", "reset-email", key_func=ratelimits.form_email_key("reset-email")
)
per_address = ratelimits.budget("PASSWORD_RESET_LIMIT_PER_ADDRESS", "reset-address")


bp.after_request(keep_private)  # the reset token is in the URL


@bp.route("/forgot-password", methods=["GET", "POST"])
@per_email
@per_address
def forgot():
    """Ask for a reset link; the answer is the same whether or not the address has an account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        password_reset.request_reset(form.email.data)
        minutes = current_app.config["PASSWORD_RESET_MINUTES"]
        flash(
            f"If an account uses {form.email.data}, a reset link is on its way; it is valid {minutes} minutes.",
            "success",
        )
        return redirect(url_for("auth.login"))
    return render_template("password/forgot.html", form=form), 422 if form.errors else 200


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@per_address
def reset(token: str):
    """Choose a new password through a link from the e-mail."""
    try:
        user = password_reset.user_for_token(token)
    except password_reset.ResetTokenError as exc:
        return render_template("password/invalid.html", message=str(exc)), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        # Who this browser is, read before the change: afterwards its session no longer matches the password.
        this_browser = current_user.get_id() if current_user.is_authenticated else None
        try:
            changed = password_reset.reset_password(token, form.password.data)
        except password_reset.ResetTokenError as exc:
            return render_template("password/invalid.html", message=str(exc)), 400
        if this_browser is not None and this_browser.split(":")[0] == str(changed.id):
            # The browser making the change stays in; every other session and remember-me cookie has ended.
            login_user(changed)
            flash("Your password was changed; every other session of yours has been signed out.", "success")
            return redirect(url_for("main.index"))
        flash("Your password was changed: log in with it. Every session of yours has been signed out.", "success")
        return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("password/reset.html", form=form, user=user, logged_in=current_user.is_authenticated), status
