"""What the staff dashboard shows: teams with members, latest defence, matches and scores; every submission."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from app.extensions import db
from app.models import Attack, Defence, Match, Submission, SubmissionKind, SubmissionStatus, Team, User
from app.services import competition, leaderboard, references
from app.services.teams import latest_attacks
from app.storage import StorageError, get_storage

PER_PAGE = 50
MAX_SEARCH = 100  # characters of a search term kept


@dataclass
class RoundLine:
    """A team's round: its matches as attacker and defender (with the attack that counts), rank and score."""

    number: int
    rank: int | None = None
    score: float | None = None
    as_attacker: list[tuple[Match, Attack | None]] = field(default_factory=list)
    as_defender: list[tuple[Match, Attack | None]] = field(default_factory=list)


@dataclass
class TeamLine:
    team: Team
    latest_submission: Submission | None
    latest_defence: Defence | None
    rounds: list[RoundLine]


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def search_teams(term: str = "", page: int = 1):
    """A page of teams whose name, or a member's username or e-mail, contains term (case-insensitive)."""
    query = sa.select(Team).options(selectinload(Team.members)).order_by(Team.name)
    term = term.strip()[:MAX_SEARCH]
    if term:
        pattern = _like(term)
        member = sa.select(User.team_id).where(
            sa.or_(
                sa.func.lower(User.username).like(pattern, escape="\\"),
                sa.func.lower(User.email).like(pattern, escape="\\"),
                User.sciper.like(pattern, escape="\\"),
            )
        )
        query = query.where(sa.or_(sa.func.lower(Team.name).like(pattern, escape="\\"), Team.id.in_(member)))
    return db.paginate(query, page=page, per_page=PER_PAGE, error_out=False)


def team_lines(teams: list[Team]) -> list[TeamLine]:
    """Everything the dashboard shows about these teams, in a fixed number of queries."""
    ids = [t.id for t in teams]
    if not ids:
        return []
    latest_sub_ids = (
        sa.select(sa.func.max(Submission.id))
        .where(Submission.kind == SubmissionKind.DEFENCE, Submission.team_id.in_(ids))
        .group_by(Submission.team_id)
    ).scalar_subquery()
    latest_subs = {
        s.team_id: s for s in db.session.scalars(sa.select(Submission).where(Submission.id.in_(latest_sub_ids)))
    }
    latest_def_ids = (
        sa.select(sa.func.max(Defence.id))
        .join(Submission, Submission.id == Defence.submission_id)
        .where(Submission.status == SubmissionStatus.SUCCEEDED, Defence.team_id.in_(ids))
        .group_by(Defence.team_id)
    ).scalar_subquery()
    latest_defs = {d.team_id: d for d in db.session.scalars(sa.select(Defence).where(Defence.id.in_(latest_def_ids)))}
    matches = list(
        db.session.scalars(
            sa.select(Match)
            .where(sa.or_(Match.attacker_team_id.in_(ids), Match.defender_team_id.in_(ids)))
            .options(joinedload(Match.attacker), joinedload(Match.defender))
            .order_by(Match.round, Match.id)
        )
    )
    attacks = latest_attacks([m.id for m in matches])
    current = competition.get_state().current_round
    # The round boards are cached for every page; one lookup per round, not per team.
    boards = {n: {r["team_id"]: r for r in leaderboard.round_board(n)["rows"]} for n in range(1, current + 1)}
    lines = []
    for team in teams:
        rounds = {}
        for n in range(1, current + 1):
            row = boards[n].get(team.id)
            rounds[n] = RoundLine(n, row["rank"] if row else None, row["score"] if row else None)
        for m in matches:
            if m.round not in rounds:
                continue
            if m.attacker_team_id == team.id:
                rounds[m.round].as_attacker.append((m, attacks.get(m.id)))
            if m.defender_team_id == team.id:
                rounds[m.round].as_defender.append((m, attacks.get(m.id)))
        played = [r for r in rounds.values() if r.as_attacker or r.as_defender or r.score is not None]
        lines.append(TeamLine(team, latest_subs.get(team.id), latest_defs.get(team.id), played))
    return lines


@dataclass
class SubmissionFilter:
    """The dashboard's submission filters; empty fields do not filter."""

    kind: str = ""
    status: str = ""
    team: str = ""
    round: int | None = None

    def as_args(self) -> dict[str, Any]:
        args = {"kind": self.kind, "status": self.status, "team": self.team, "round": self.round}
        return {k: v for k, v in args.items() if v not in ("", None)}


KINDS = [k.value for k in SubmissionKind]
STATUSES = [s.value for s in SubmissionStatus]


def submissions_page(filters: SubmissionFilter, page: int = 1):
    """A page of submissions matching filters, newest first, with team and uploader loaded."""
    query = sa.select(Submission).options(joinedload(Submission.team), joinedload(Submission.user))
    if filters.kind in KINDS:
        query = query.where(Submission.kind == SubmissionKind(filters.kind))
    if filters.status in STATUSES:
        query = query.where(Submission.status == SubmissionStatus(filters.status))
    if filters.team:
        query = query.join(Team, Team.id == Submission.team_id).where(Team.name == filters.team.strip()[:MAX_SEARCH])
    if filters.round is not None:
        query = query.where(Submission.round == filters.round)
    return db.paginate(query.order_by(Submission.id.desc()), page=page, per_page=PER_PAGE, error_out=False)


def submission_files(submission: Submission) -> dict[str, str]:
    """The stored files of a submission by name: its upload, and a successful defence's three sets."""
    files = {"upload": submission.file_key} if submission.file_key else {}
    defence = db.session.scalar(sa.select(Defence).where(Defence.submission_id == submission.id))
    if defence is not None:
        files.update(train=defence.train_key, test=defence.test_key, verification=defence.verification_key)
    return files


def open_submission_file(submission_id: int, which: str):
    """(file object, download name) of one stored file of a submission; None when there is none."""
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        return None
    key = submission_files(submission).get(which)
    if key is None:
        return None
    try:
        handle = get_storage().open(key)
    except StorageError:
        return None
    return handle, f"submission-{submission.id}-{which}-{key.rsplit('/', 1)[-1]}"


def reference_page() -> dict[str, Any]:
    """The current reference, every stored one, and how many defences each measured."""
    counts = dict(
        db.session.execute(
            sa.select(Defence.reference_id, sa.func.count(Defence.id))
            .where(Defence.reference_id.is_not(None))
            .group_by(Defence.reference_id)
        ).all()
    )
    return {"current": references.current_reference(), "history": references.references(), "counts": counts}
