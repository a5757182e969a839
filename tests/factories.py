"""Test builders: make_user, make_team, api_token."""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import (
    Attack,
    Defence,
    Match,
    Round,
    Submission,
    SubmissionKind,
    SubmissionStatus,
    Team,
    User,
    canonical_username,
)
from app.services import accounts, competition

_sciper = itertools.count(100000)
# Users made here get a real scrypt hash with a low work factor: creating one and each login then take a few
# milliseconds instead of ~0.1 s apiece (hundreds of tests create and log in users). Accounts made through the
# app hash at full cost, and tests/web/test_security.py checks that unknown names cost as much as that.
FAST_PASSWORD_HASH = "scrypt:1024:8:1"


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
    user.password_hash = generate_password_hash(password, method=FAST_PASSWORD_HASH)
    db.session.add(user)
    db.session.commit()
    return user


def api_token(user: User) -> dict[str, str]:
    """Authorization headers with a fresh token for user."""
    _, token = accounts.issue_token(user)
    return {"Authorization": f"Bearer {token}"}


def make_submission(
    team: Team,
    user: User,
    *,
    kind: SubmissionKind = SubmissionKind.DEFENCE,
    filename: str = "d.zip",
    status: SubmissionStatus = SubmissionStatus.QUEUED,
    round: int = 0,
) -> Submission:
    """A submission row (no file behind it)."""
    submission = Submission(
        kind=kind,
        team_id=team.id,
        user_id=user.id,
        round=round,
        original_filename=filename,
        sha256="0" * 64,
        size=1,
        status=status,
    )
    db.session.add(submission)
    db.session.commit()
    return submission


def _member(team: Team) -> User:
    return team.members[0] if team.members else make_user(f"member-of-{team.id}", team=team.name)


def make_defence(team: Team, utility_score: float = 5.0) -> Defence:
    """A successful defence row (no files behind it: for pages and rankings, not downloads)."""
    submission = make_submission(team, _member(team), status=SubmissionStatus.SUCCEEDED)
    defence = Defence(
        team_id=team.id,
        submission_id=submission.id,
        utility_score=utility_score,
        utility={"bytes_in": {"max": 1, "mean": 1, "median": 1}},
        seed=1,
        train_key="x/train",
        test_key="x/test",
        verification_key="x/verification",
    )
    db.session.add(defence)
    db.session.commit()
    return defence


def make_round(number: int, pairs: list[tuple[Team, Team]]) -> list[Match]:
    """Round `number` with the given (attacker, defender) pairs, pinned to each defender's latest defence."""
    db.session.add(Round(number=number, seed=number))
    db.session.flush()
    matches = []
    for attacker, defender in pairs:
        defence = db.session.scalar(
            sa.select(Defence).where(Defence.team_id == defender.id).order_by(Defence.id.desc())
        ) or make_defence(defender)
        matches.append(
            Match(round=number, attacker_team_id=attacker.id, defender_team_id=defender.id, defence_id=defence.id)
        )
    db.session.add_all(matches)
    competition.get_state().current_round = number
    db.session.commit()
    return matches


def make_attack(
    match: Match,
    roc_auc: float,
    public_roc_auc: float | None = None,
    accuracy: float | None = None,
    top5_accuracy: float | None = None,
) -> Attack:
    """A scored attack of a match; its public-subset scores are the full ones unless public_roc_auc is given.
    Its accuracy is roc_auc / 2 and its top-5 accuracy roc_auc unless given."""
    attacker = db.session.get(Team, match.attacker_team_id)
    submission = make_submission(
        attacker, _member(attacker), kind=SubmissionKind.ATTACK, status=SubmissionStatus.SUCCEEDED, round=match.round
    )
    public = roc_auc if public_roc_auc is None else public_roc_auc
    accuracy = roc_auc / 2 if accuracy is None else accuracy
    top5_accuracy = roc_auc if top5_accuracy is None else top5_accuracy
    public_accuracy = accuracy if public_roc_auc is None else public / 2
    attack = Attack(
        match_id=match.id,
        submission_id=submission.id,
        accuracy=accuracy,
        top5_accuracy=top5_accuracy,
        roc_auc=roc_auc,
        public_scores={"accuracy": public_accuracy, "top5_accuracy": top5_accuracy, "roc_auc": public},
    )
    db.session.add(attack)
    db.session.commit()
    return attack


def round_matches(number: int) -> list[Match]:
    """A round's matches as stored now."""
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Match).where(Match.round == number).order_by(Match.id)))
