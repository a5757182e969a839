"""Accounts, teams and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from app import clock
from app.extensions import db
from app.models import (
    TEAM_SIZE,
    ApiToken,
    Team,
    User,
    canonical_username,
    new_join_code,
)
from app.services.errors import Refused

NEW_TEAM = "New team"
# Usernames appear in URLs, e-mails and file listings: plain ASCII keeps them unambiguous (no look-alikes).
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
USERNAME_RULE = "3 to 32 characters: ASCII letters, digits, '_', '.' and '-'."
SCIPER_RE = re.compile(r"^\d{6}$")
TEAM_NAME_RE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$")
DEMO_TEAMS = {
    "al-bo": ("alice", "bob"),
    "cha-di": ("charlie", "dimitri"),
    "eu-fra": ("eugene", "francois"),
    "ger-hec": ("gerald", "hector"),
    "ign-joh": ("ignatus", "john"),
}


class AccountError(Refused):
    """A registration problem a user can fix; field names the form field it concerns."""

    code = "invalid_account"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Registration:
    """What the registration form asks for (the password only as its hash)."""

    username: str
    email: str
    sciper: str
    team_select: str
    new_team_name: str = ""
    join_code: str = ""
    password_hash: str = ""


def find_user(username: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.username_canonical == canonical_username(username)))


_dummy_hash: str | None = None


def _unknown_user_hash() -> str:
    """A real hash of a random password, so that unknown names cost a login as much as known ones."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = generate_password_hash(secrets.token_urlsafe(16))
    return _dummy_hash


def authenticate(username: str, password: str) -> User | None:
    """The user these credentials name, or None; the password is hashed either way (no timing signal)."""
    user = find_user(username or "")
    password_ok = check_password_hash(user.password_hash if user else _unknown_user_hash(), password or "")
    return user if user is not None and password_ok else None


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise AccountError("username", "Choose a username.")
    if not USERNAME_RE.match(username):
        raise AccountError("username", "A username has " + USERNAME_RULE)
    return username


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


def normalize_join_code(code: str) -> str:
    """Upper case, separators dropped, look-alikes mapped (O->0, I/L->1), regrouped as XXXX-XXXX-XXXX."""
    raw = "".join(c for c in (code or "").upper() if c.isalnum()).translate(str.maketrans("OIL", "011"))
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def join_code_matches(team: Team, code: str) -> bool:
    """Constant-time comparison of a typed code with the team's code."""
    return hmac.compare_digest(normalize_join_code(code).encode(), team.join_code.encode())


def renew_join_code(team: Team) -> str:
    """Give the team a new join code (the old one stops working) and commit."""
    team.join_code = new_join_code()
    db.session.commit()
    return team.join_code


def joinable_teams() -> list[Team]:
    """Student teams with a free place, by name (the choices of the registration form)."""
    teams = db.session.scalars(sa.select(Team).options(selectinload(Team.members)).order_by(Team.name))
    return [t for t in teams if not t.is_full and not t.is_admin_team]


def _team_for(reg: Registration, *, lock: bool) -> Team:
    """The team reg joins (checked: it exists, has a free place and the code is its code), or a new team (not yet
    added to the session) when it creates one. lock: hold the team's row until the commit."""
    if reg.team_select == NEW_TEAM:
        return Team(name=check_team_name(reg.new_team_name))
    query = sa.select(Team).where(Team.name == reg.team_select)
    team = db.session.scalar(query.with_for_update() if lock else query)
    if team is None or team.is_admin_team:
        raise AccountError("team_select", "This team does not exist: pick one from the list or create a new team.")
    if team.is_full:
        raise AccountError("team_select", f"Team {team.name} already has {TEAM_SIZE} members: pick another team.")
    if not (reg.join_code or "").strip():
        raise AccountError("join_code", f"Enter team {team.name}'s join code: a member finds it on the team's page.")
    if not join_code_matches(team, reg.join_code):
        raise AccountError(
            "join_code", f"This is not team {team.name}'s join code: ask a member for the code on the team's page."
        )
    return team


def check_registration(reg: Registration) -> None:
    """Check a registration form, all but whether its e-mail address is free: the form must not tell who has an
    account (services/registration.py mails the address instead). Usernames are public (leaderboard, team
    pages) and a SCIPER is unique whoever asks, so these are answered here. Raises AccountError."""
    check_username_free(check_username(reg.username))
    check_sciper(reg.sciper)
    _team_for(reg, lock=False)


def register_user(reg: Registration) -> User:
    """Create a student account in a new team or a team with a free place, and commit; every check is made
    again here (names, SCIPER or team places may have been taken since the form was checked).

    Raises AccountError naming the field at fault.
    """
    username = check_username(reg.username)
    check_username_free(username)
    check_email_free(reg.email)
    check_sciper(reg.sciper)
    team = _team_for(reg, lock=True)
    user = User(
        username=username,
        username_canonical=canonical_username(username),
        email=reg.email.strip(),
        sciper=reg.sciper,
        team=team,
        password_hash=reg.password_hash,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # a concurrent registration took the name, e-mail or sciper
        db.session.rollback()
        raise AccountError("username", "This username, e-mail or SCIPER was just taken: check and try again.") from exc
    return user


def move_student(username: str, team_name: str, create: bool = False) -> Team:
    """Staff move a student into another team (creating it when asked) and commit; raises AccountError."""
    user = find_user(username)
    if user is None:
        raise AccountError("username", f"No user {username}.")
    if user.is_admin:
        raise AccountError("username", f"{user.username} is an admin: admins are not in student teams.")
    team = db.session.scalar(sa.select(Team).where(sa.func.lower(Team.name) == team_name.strip().lower()))
    if team is None:
        if not create:
            raise AccountError("team", f"No team {team_name}: check the name, or pass --create to create it.")
        team = Team(name=check_team_name(team_name))
        db.session.add(team)
    elif team.is_admin_team:
        raise AccountError("team", f"Team {team.name} is the staff's.")
    elif user.team_id == team.id:
        raise AccountError("team", f"{user.username} is already in team {team.name}.")
    elif team.is_full:
        raise AccountError("team", f"Team {team.name} already has {TEAM_SIZE} members: move one out first.")
    user.team = team
    db.session.commit()
    return team


def create_admin(username: str, email: str, password: str) -> User:
    """Create an admin account (admins never come through /register) and commit."""
    username = check_username(username)
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
    """Recreate the original's demo: ten students in five teams and admin `admin`, all with password `admin`.

    The password is hashed once for all of them (each hash costs about 0.1 s of CPU, on purpose): the demo
    starts a second sooner, and its accounts' password is public anyway."""
    password_hash = generate_password_hash("admin")
    users: list[User] = []
    for team_name, members in DEMO_TEAMS.items():
        team = db.session.scalar(sa.select(Team).where(Team.name == team_name)) or Team(name=team_name)
        db.session.add(team)
        for i, name in enumerate(members):
            user = find_user(name) or User(username=name, username_canonical=name, email=demo_email(name))
            user.team = team
            user.sciper = user.sciper or f"{900000 + 10 * len(users) + i:06d}"
            user.password_hash = password_hash
            db.session.add(user)
            users.append(user)
    admin = find_user("admin") or User(username="admin", username_canonical="admin", email=demo_email("admin"))
    admin.is_admin = True
    admin.password_hash = password_hash
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
        expires_at=clock.now() + timedelta(hours=current_app.config["API_TOKEN_HOURS"]),
    )
    db.session.add(row)
    db.session.execute(sa.delete(ApiToken).where(ApiToken.expires_at < clock.now()))
    db.session.commit()
    return row, token


def token_row(token: str) -> ApiToken | None:
    """The unexpired token row for a bearer token, or None."""
    row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
    if row is None or row.expires_at < clock.now():
        return None
    return row


def revoke_token(row: ApiToken) -> None:
    db.session.delete(row)
    db.session.commit()
