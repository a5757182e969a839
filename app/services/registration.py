"""Registration confirmed by e-mail: the answer to a registration never tells whether an address has an account.

The request checks the form (all but the address's being free), then always hands one task to a worker and
answers the same page. The worker mails the address either a link that completes the registration (no account
has it) or a notice that someone tried to register with it, with links to log in and to reset the password.

Nothing is stored until the link is confirmed: the pending registration travels in the link itself, encrypted
and authenticated with a key derived from SECRET_KEY (Fernet: AES and an HMAC), so the password hash, the
team's join code and the SCIPER never appear in clear in a URL, a log line or the broker. The link expires after
REGISTRATION_CONFIRM_HOURS; at confirmation every check is made again (a name, a SCIPER or the team's last place
may have been taken meanwhile), and confirming a link twice only says that the account exists.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, render_template
from werkzeug.security import generate_password_hash

from app import clock
from app.models import User, canonical_username
from app.services import accounts, competition, mail, password_reset, queue
from app.services.errors import Conflict, Invalid

log = logging.getLogger(__name__)
CONFIRM_TASK = "srs.send_registration_mail"
KEY_PURPOSE = b"srs-registration-link"
# A real link is about 500 characters; anything much longer is not one of ours (and is not decrypted).
MAX_TOKEN_LENGTH = 2000
_FIELDS = {
    "username": "u",
    "email": "e",
    "sciper": "s",
    "team_select": "t",
    "new_team_name": "n",
    "join_code": "j",
    "password_hash": "h",
}
_EPOCH = datetime(1970, 1, 1)


class RegistrationLinkError(Invalid):
    """A confirmation link that cannot be used; the message says why and what to do."""


@dataclass
class Sent:
    """What the page answering a registration says, whatever the worker will mail."""

    email: str
    hours: int


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_PURPOSE).derive(
        current_app.config["SECRET_KEY"].encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _now() -> int:
    """Seconds since the epoch by the app's clock (which tests can freeze)."""
    return int((clock.now() - _EPOCH).total_seconds())


def make_token(reg: accounts.Registration) -> str:
    """The link's token: the whole registration encrypted and authenticated, stamped with the time it was made."""
    data = json.dumps({_FIELDS[k]: v for k, v in asdict(reg).items()}, separators=(",", ":")).encode()
    return _fernet().encrypt_at_time(data, _now()).decode().rstrip("=")


def read_token(token: str) -> accounts.Registration:
    """The registration a valid, unexpired link carries; RegistrationLinkError otherwise."""
    hours = current_app.config["REGISTRATION_CONFIRM_HOURS"]
    invalid = RegistrationLinkError("This link is not valid: copy the whole link from the e-mail, or register again.")
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise invalid
    raw = (token + "=" * (-len(token) % 4)).encode()
    fernet = _fernet()
    try:
        made = fernet.extract_timestamp(raw)  # checks the HMAC: a tampered link goes no further
    except (InvalidToken, ValueError) as exc:
        raise invalid from exc
    if _now() - made > hours * 3600:
        raise RegistrationLinkError(
            f"This link has expired (links are valid {hours} hours): register again to get a new one."
        )
    try:
        data = json.loads(fernet.decrypt_at_time(raw, hours * 3600, _now()))
        return accounts.Registration(**{name: str(data[short]) for name, short in _FIELDS.items()})
    except (InvalidToken, ValueError, KeyError, TypeError) as exc:
        raise invalid from exc


def start(reg: accounts.Registration, password: str) -> Sent:
    """Check the form (AccountError names the field at fault) and hand the registration to a worker, which mails
    the address (send_mail_for). The request does the same work whether or not an account has the address: it
    never looks the address up."""
    accounts.check_registration(reg)
    reg.email = reg.email.strip()
    reg.password_hash = generate_password_hash(password)
    queue.send_task_or_run_in_background(CONFIRM_TASK, [make_token(reg)], send_mail_for)
    return Sent(email=reg.email, hours=current_app.config["REGISTRATION_CONFIRM_HOURS"])


def send_mail_for(token: str) -> None:
    """The worker's half of start: mail the confirmation link, or, when an account already has the address, a
    notice with links to log in and to reset its password."""
    try:
        reg = read_token(token)
    except RegistrationLinkError as exc:  # waited in the queue past its lifetime
        log.warning("registration mail not sent: %s", exc)
        return
    user = password_reset.find_by_email(reg.email)
    if user is not None:
        context = {
            "user": user,
            "login": mail.site_url("auth.login"),
            "reset": mail.site_url("password.reset", token=password_reset.make_token(user)),
            "minutes": current_app.config["PASSWORD_RESET_MINUTES"],
        }
        subject, template = "[SRS] Someone tried to register with your address", "auth/email_already_registered"
    else:
        context = {
            "reg": reg,
            "link": mail.site_url("auth.confirm_registration", token=token),
            "hours": current_app.config["REGISTRATION_CONFIRM_HOURS"],
        }
        subject, template = "[SRS] Confirm your registration", "auth/email_confirm"
    text = render_template(f"{template}.txt", **context)
    html = render_template(f"{template}.html", **context)
    mail.deliver(subject, [reg.email], text, html)


def account_of(reg: accounts.Registration) -> User | None:
    """The account this registration already created (its link was confirmed before), or None."""
    user = password_reset.find_by_email(reg.email)
    if user is not None and user.username_canonical == canonical_username(reg.username):
        return user
    return None


def confirm(reg: accounts.Registration) -> tuple[User, bool]:
    """Create the account a link carried (read_token) and commit; (user, True), or (the account, False) when the
    link was confirmed before. RegistrationLinkError when the registration can no longer be made as it was asked
    (closed, or a name, SCIPER or place taken since)."""
    done = account_of(reg)
    if done is not None:
        return done, False
    if not competition.get_state().registration_open:
        raise RegistrationLinkError("Registration has closed since you registered: ask the course staff.")
    try:
        return accounts.register_user(reg), True
    except accounts.AccountError as exc:
        again = "" if exc.field == "email" else " Register again."
        raise RegistrationLinkError(
            f"Your registration cannot be completed as you made it: {exc.message}{again}",
            status=Conflict.status,
            code=Conflict.code,
        ) from exc
