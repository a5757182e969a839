"""Register, log in, log out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from wtforms.fields.choices import SelectChoice

from app import ratelimits
from app.forms import ConfirmForm, LoginForm, RegistrationForm
from app.security import keep_private
from app.services import accounts, competition, registration

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
            flash(
                "Invalid username or password. Just registered? The account exists once you confirm the link "
                "mailed to you.",
                "error",
            )
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


def _sent_mail(response) -> bool:
    """Whether a registration was handed to a worker (which mails its address): only these spend the budgets."""
    return response.status_code == 200


register_per_email = ratelimits.budget(
    "REGISTRATION_LIMIT_PER_EMAIL",
    "register-email",
    key_func=ratelimits.form_email_key("register-email"),
    deduct_when=_sent_mail,
)
register_per_address = ratelimits.budget("REGISTRATION_LIMIT_PER_ADDRESS", "register-address", deduct_when=_sent_mail)


@bp.route("/register", methods=["GET", "POST"])
@register_per_email
@register_per_address
def register():
    """Ask for a student account in a new team or in a team with a free place; a mailed link completes it. The
    answer is the same whether or not an account has the address (see services/registration.py)."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    if not competition.get_state().registration_open:
        status = 403 if request.method == "POST" else 200
        return render_template("auth/registration_closed.html"), status
    form = RegistrationForm()
    teams = accounts.joinable_teams()
    form.team_select.choices = [SelectChoice(accounts.NEW_TEAM)] + [SelectChoice(t.name) for t in teams]
    if form.validate_on_submit():
        reg = accounts.Registration(
            username=form.username.data,
            email=form.email.data,
            sciper=form.sciper.data,
            team_select=form.team_select.data or accounts.NEW_TEAM,
            new_team_name=form.new_team_name.data or "",
            join_code=form.join_code.data or "",
        )
        try:
            sent = registration.start(reg, form.password.data)
        except accounts.AccountError as exc:
            getattr(form, exc.field).errors.append(exc.message)
        else:
            no_mail_server = not current_app.config.get("MAIL_SERVER")
            return render_template("auth/register_sent.html", sent=sent, no_mail_server=no_mail_server)
    status = 422 if form.errors else 200
    return render_template("auth/register.html", form=form), status


def _private(response):
    """The link's token is in the URL (see keep_private)."""
    return keep_private(make_response(response))


@bp.route("/register/confirm/<token>", methods=["GET", "POST"])
def confirm_registration(token: str):
    """A mailed link: the GET only shows what it will create and a button (mail scanners fetching links confirm
    nothing); the POST, with the CSRF token, creates the account."""
    try:
        reg = registration.read_token(token)
    except registration.RegistrationLinkError as exc:
        return _private((render_template("auth/confirm_invalid.html", message=exc.message), exc.status))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user, created = registration.confirm(reg)
        except registration.RegistrationLinkError as exc:
            return _private((render_template("auth/confirm_invalid.html", message=exc.message), exc.status))
        if created:
            flash(f"Your registration is confirmed: log in as {user.username}.", "success")
        else:
            flash(f"This registration was already confirmed: log in as {user.username}.", "success")
        return _private(redirect(url_for("auth.login")))
    done = registration.account_of(reg)
    return _private(render_template("auth/confirm.html", form=form, reg=reg, done=done, new_team=accounts.NEW_TEAM))
