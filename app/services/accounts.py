"""Accounts, teams and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import TEAM_SIZE, ApiToken, Team, User, canonical_username, utcnow

NEW_TEAM = "New team"
SCIPER_RE = re.compile(r"^\d{6}$")
TEAM_NAME_RE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$")
DEMO_TEAMS = {
    "al-bo": ("alice", "bob"),
    "cha-di": ("charlie", "dimitri"),
    "eu-fra": ("eugene", "francois"),
    "ger-hec": ("gerald", "hector"),
    "ign-joh": ("ignatus", "john"),
}


class AccountError(ValueError):
    """A registration problem a user can fix; field names the form field it concerns."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Registration:
    username: str
    email: str
    password: str
    sciper: str
    team_select: str
    new_team_name: str = ""


def find_user(username: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.username_canonical == canonical_username(username)))


def check_username_free(username: str) -> None:
    if find_user(username) is not None:
        raise AccountError("username", "This username is taken: please choose another one.")


def check_email_free(email: str) -> None:
    if db.session.scalar(sa.select(User.id).where(sa.func.lower(User.email) == email.strip().lower())):
        raise AccountError("email", "This e-mail address is already registered: log in instead.")


def check_sciper(sciper: str) -> None:
    if not SCIPER_RE.match(sciper or ""):
        raise AccountError("sciper", "A SCIPER is exactly 6 digits.")
    if db.session.scalar(sa.select(User.id).where(User.sciper == sciper)):
        raise AccountError("sciper", "This SCIPER is already registered: each student registers once.")


def check_team_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise AccountError("new_team_name", "Give your new team a name.")
    if name.casefold() == NEW_TEAM.casefold():
        raise AccountError("new_team_name", f'"{NEW_TEAM}" cannot be a team name: choose another one.')
    if not TEAM_NAME_RE.match(name):
        raise AccountError(
            "new_team_name",
            "Team names use printable ASCII characters only (letters, digits, punctuation).",
        )
    if db.session.scalar(sa.select(Team.id).where(sa.func.lower(Team.name) == name.lower())):
        raise AccountError("new_team_name", "A team with this name exists: join it or choose another name.")
    return name


def joinable_teams() -> list[Team]:
    """Student teams with a free place, by name (the choices of the registration form)."""
    teams = db.session.scalars(sa.select(Team).options(selectinload(Team.members)).order_by(Team.name))
    return [t for t in teams if not t.is_full and not t.is_admin_team]


def register_user(reg: Registration) -> User:
    """Create a student account in a new team or a team with a free place, and commit.

    Raises AccountError naming the field at fault.
    """
    username = reg.username.strip()
    if not username:
        raise AccountError("username", "Choose a username.")
    check_username_free(username)
    check_email_free(reg.email)
    check_sciper(reg.sciper)
    if reg.team_select == NEW_TEAM:
        team = Team(name=check_team_name(reg.new_team_name))
        db.session.add(team)
    else:
        team = db.session.scalar(sa.select(Team).where(Team.name == reg.team_select).with_for_update())
        if team is None or team.is_admin_team:
            raise AccountError("team_select", "This team does not exist: pick one from the list or create a new team.")
        if team.is_full:
            raise AccountError("team_select", f"Team {team.name} already has {TEAM_SIZE} members: pick another team.")
    user = User(
        username=username,
        username_canonical=canonical_username(username),
        email=reg.email.strip(),
        sciper=reg.sciper,
        team=team,
    )
    user.set_password(reg.password)
    db.session.add(user)
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # a concurrent registration took the name, e-mail or sciper
        db.session.rollback()
        raise AccountError("username", "This username, e-mail or SCIPER was just taken: check and try again.") from exc
    return user


def create_admin(username: str, email: str, password: str) -> User:
    """Create an admin account (admins never come through /register) and commit."""
    check_username_free(username)
    check_email_free(email)
    admin = User(
        username=username.strip(),
        username_canonical=canonical_username(username),
        email=email.strip(),
        is_admin=True,
    )
    admin.set_password(password)
    db.session.add(admin)
    db.session.commit()
    return admin


def demo_email(username: str) -> str:
    fmt = current_app.config.get("MAIL_TEST_RECEIVER_FORMAT")
    return fmt.format(username) if fmt and "{}" in fmt else f"{username}@example.org"


def populate_test_users() -> list[User]:
    """Recreate the original's demo: ten students in five teams and admin `admin`, all with password `admin`."""
    users: list[User] = []
    for team_name, members in DEMO_TEAMS.items():
        team = db.session.scalar(sa.select(Team).where(Team.name == team_name)) or Team(name=team_name)
        db.session.add(team)
        for i, name in enumerate(members):
            user = find_user(name) or User(username=name, username_canonical=name, email=demo_email(name))
            user.team = team
            user.sciper = user.sciper or f"{900000 + 10 * len(users) + i:06d}"
            user.set_password("admin")
            db.session.add(user)
            users.append(user)
    admin = find_user("admin") or User(username="admin", username_canonical="admin", email=demo_email("admin"))
    admin.is_admin = True
    admin.set_password("admin")
    db.session.add(admin)
    users.append(admin)
    db.session.commit()
    return users


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> tuple[ApiToken, str]:
    """Create a random bearer token for user; returns (row, token). Only the token's hash is stored."""
    token = secrets.token_urlsafe(32)
    row = ApiToken(
        user=user,
        token_hash=_hash_token(token),
        expires_at=utcnow() + timedelta(hours=current_app.config["API_TOKEN_HOURS"]),
    )
    db.session.add(row)
    db.session.execute(sa.delete(ApiToken).where(ApiToken.expires_at < utcnow()))
    db.session.commit()
    return row, token


def token_row(token: str) -> ApiToken | None:
    """The unexpired token row for a bearer token, or None."""
    row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
    if row is None or row.expires_at < utcnow():
        return None
    return row


def revoke_token(row: ApiToken) -> None:
    db.session.delete(row)
    db.session.commit()
