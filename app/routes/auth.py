"""Register, log in, log out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from wtforms.fields.choices import SelectChoice

from app import ratelimits
from app.forms import ConfirmForm, LoginForm, RegistrationForm
from app.services import accounts, competition

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: '/x' yes; '//evil', 'http://evil', 'javascript:' no."""
    if not target:
        return url_for("main.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("main.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@ratelimits.per_account
@ratelimits.per_address
def login():
    """Sign in; remember me; back to `next` when it is a path of this site."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.username.data, form.password.data)
        if user is None:
            flash("Invalid username or password.", "error")
            return render_template("auth/login.html", form=form), 200
        login_user(user, remember=form.remember_me.data)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Sign out by POST with the CSRF token; a GET (a link, a prefetch, another site's image) only asks."""
    form = ConfirmForm()
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if form.validate_on_submit():
        logout_user()
        flash("You are logged out.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/logout.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Create a student account in a new team or in a team with a free place."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    if not competition.get_state().registration_open:
        status = 403 if request.method == "POST" else 200
        return render_template("auth/registration_closed.html"), status
    form = RegistrationForm()
    teams = accounts.joinable_teams()
    form.team_select.choices = [SelectChoice(accounts.NEW_TEAM)] + [SelectChoice(t.name) for t in teams]
    if form.validate_on_submit():
        try:
            accounts.register_user(
                accounts.Registration(
                    username=form.username.data,
                    email=form.email.data,
                    password=form.password.data,
                    sciper=form.sciper.data,
                    team_select=form.team_select.data or accounts.NEW_TEAM,
                    new_team_name=form.new_team_name.data or "",
                    join_code=form.join_code.data or "",
                )
            )
        except accounts.AccountError as exc:
            getattr(form, exc.field).errors.append(exc.message)
        else:
            flash("Congratulations, you are now registered: log in.", "success")
            return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("auth/register.html", form=form), status
