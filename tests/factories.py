"""Test builders: make_user, make_team, api_token."""

from __future__ import annotations

import itertools

import sqlalchemy as sa

from app.extensions import db
from app.models import Team, User, canonical_username
from app.services import accounts

_sciper = itertools.count(100000)


def make_team(name: str) -> Team:
    team = db.session.scalar(sa.select(Team).where(Team.name == name))
    if team is None:
        team = Team(name=name)
        db.session.add(team)
        db.session.commit()
    return team


def make_user(username: str, *, team: str | None = None, admin: bool = False, password: str = "secret-pw") -> User:
    user = User(
        username=username,
        username_canonical=canonical_username(username),
        email=f"{username}@example.org",
        sciper=None if admin else f"{next(_sciper):06d}",
        is_admin=admin,
        team=make_team(team) if team else None,
    )
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def api_token(user: User) -> dict[str, str]:
    """Authorization headers with a fresh token for user."""
    _, token = accounts.issue_token(user)
    return {"Authorization": f"Bearer {token}"}
