"""Password reset by e-mailed link: signed, time-limited, single-use tokens bound to the current password hash."""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa
from flask import current_app, render_template
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.extensions import db
from app.models import ApiToken, User
from app.services import audit, mail, queue
from app.services.errors import Invalid

log = logging.getLogger(__name__)
SALT = "srs-password-reset"
RESET_TASK = "srs.send_reset_link"


class ResetTokenError(Invalid):
    """A reset link that cannot be used; the message says why and what to do."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _fingerprint(user: User) -> str:
    """Changes whenever the password does, so a link dies once used (or once the password changed otherwise)."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def make_token(user: User) -> str:
    return _serializer().dumps({"user": user.id, "pw": _fingerprint(user)})


def user_for_token(token: str) -> User:
    """The user a valid, unexpired, unused token was made for; ResetTokenError otherwise."""
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    try:
        data = _serializer().loads(token, max_age=minutes * 60)
    except SignatureExpired as exc:
        raise ResetTokenError(f"This link has expired (links are valid {minutes} minutes): ask for a new one.") from exc
    except BadSignature as exc:
        raise ResetTokenError(
            "This link is not valid: copy the whole link from the e-mail, or ask for a new one."
        ) from exc
    user = db.session.get(User, data.get("user")) if isinstance(data, dict) else None
    if user is None or data.get("pw") != _fingerprint(user):
        raise ResetTokenError("This link was already used or the password has changed since: ask for a new one.")
    return user


def find_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email.strip().lower()))


def send_reset_link(user: User, requested_by: User | None = None, deliver_now: bool = False) -> None:
    """Mail user a reset link (from this process with deliver_now, else through the mail task). A staff action
    when requested_by is set: the audit log records it once it exists."""
    token = make_token(user)
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    # Links must point at the public site, whichever process (or proxy) builds them.
    link = mail.site_url("password.reset", token=token)
    context = {"user": user, "link": link, "minutes": minutes, "by_staff": requested_by is not None}
    text = render_template("password/email_reset.txt", **context)
    html = render_template("password/email_reset.html", **context)
    if deliver_now:
        mail.deliver("[SRS] Reset your password", [user.email], text, html)
    else:
        mail.queue_mail("[SRS] Reset your password", [user.email], text, html)
    if requested_by is not None:
        audit.record_now(requested_by, "password-reset-link", None, {"sent_to": user.username}, target=user.username)


def request_reset(email: str) -> None:
    """Hand the request to a worker, whether or not an account has this address: the request does the same work
    and takes the same time either way (the page never tells). The worker looks the address up and mails a link
    if it belongs to an account (send_link_for). When the broker is down, a background thread does it."""
    queue.send_task_or_run_in_background(RESET_TASK, [email], send_link_for)


def send_link_for(email: str) -> None:
    """Mail a reset link, from this process, if an account has this address (the worker's half of
    request_reset)."""
    user = find_by_email(email)
    if user is None:
        log.info("password reset asked for an unknown address")
        return
    send_reset_link(user, deliver_now=True)


def reset_password(token: str, new_password: str) -> User:
    """Set a new password through a reset link (which dies with the old hash) and revoke the user's API tokens."""
    user = user_for_token(token)
    user.set_password(new_password)
    db.session.execute(sa.delete(ApiToken).where(ApiToken.user_id == user.id))
    db.session.commit()
    return user
