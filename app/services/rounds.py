"""Rounds and matches: generation (balanced, pinned to defences) and listing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import aliased, joinedload

from app import clock
from app.evaluation.matches import draw_matches
from app.extensions import db
from app.models import Defence, Match, Round, Submission, SubmissionStatus, Team, User
from app.services import audit, competition, mail, round_sets
from app.services.errors import Conflict, NotFound
from app.services.leaderboard_cache import clear_leaderboard
from app.services.teams import latest_attacks


class RoundConflict(Conflict):
    """A round that cannot be generated or closed now."""

    code = "round_conflict"


class NoSuchRound(NotFound):
    """A round number that was never generated."""


@dataclass
class RoundPlan:
    """Who plays the next round: teams with their pinned defence, and teams left out."""

    number: int
    players: list[tuple[Team, Defence]]
    left_out: list[Team]
    matches_per_team: int


def latest_defences() -> dict[int, Defence]:
    """Each team's last uploaded successful defence, by team id."""
    # Latest by upload (submission id), not by the order evaluations finished in.
    latest = (
        sa.select(sa.func.max(Defence.submission_id))
        .join(Submission, Submission.id == Defence.submission_id)
        .where(Submission.status == SubmissionStatus.SUCCEEDED)
        .group_by(Defence.team_id)
    ).scalar_subquery()
    return {d.team_id: d for d in db.session.scalars(sa.select(Defence).where(Defence.submission_id.in_(latest)))}


def plan_next_round(matches_per_team: int) -> RoundPlan:
    """Players are non-admin teams with a successful defence; the others are listed as left out."""
    admin_teams = sa.select(User.team_id).where(User.is_admin, User.team_id.is_not(None))
    teams = db.session.scalars(sa.select(Team).where(Team.id.not_in(admin_teams)).order_by(Team.name)).all()
    defences = latest_defences()
    players = [(t, defences[t.id]) for t in teams if t.id in defences]
    left_out = [t for t in teams if t.id not in defences]
    k = min(matches_per_team, max(len(players) - 1, 0))
    return RoundPlan(competition.get_state().current_round + 1, players, left_out, k)


def generate_round(number: int, matches_per_team: int, actor=None, note: str | None = None) -> list[Match]:
    """Generate round `number` (must be the current round + 1) and commit it; RoundConflict otherwise."""
    state = competition.get_state()
    if number != state.current_round + 1:
        raise RoundConflict(
            f"Round {number} cannot be generated: the current round is {state.current_round}, "
            f"so the next one is {state.current_round + 1}."
        )
    if db.session.get(Round, number) is not None:
        raise RoundConflict(f"Round {number} was already generated.")
    plan = plan_next_round(matches_per_team)
    if len(plan.players) < 2:
        raise RoundConflict(
            f"Round {number} needs at least two teams with a successful defence; there are {len(plan.players)}."
        )
    previous = {(m.attacker_team_id, m.defender_team_id) for m in round_matches(state.current_round)}
    seed = secrets.randbits(62)
    pairs = draw_matches([t.id for t, _ in plan.players], plan.matches_per_team, seed, avoid=previous)
    pinned = {t.id: d.id for t, d in plan.players}
    # Generating the next round ends the current one: its final scores (on the private subset) are published.
    previous_round = state.current_round
    ended = _end_round(previous_round) if previous_round else False
    db.session.add(Round(number=number, seed=seed))
    db.session.flush()  # the round row first: matches reference it
    matches = [Match(round=number, attacker_team_id=a, defender_team_id=d, defence_id=pinned[d]) for a, d in pairs]
    db.session.add_all(matches)
    # Every attacker gets its own ids for its targets' test pools, prepared by the workers: generation only adds rows.
    fresh_sets = round_sets.plan_sets(matches)
    db.session.add_all(fresh_sets)
    audit.record(actor, "round", {"round": state.current_round}, {"round": number, "matches": len(matches)}, note=note)
    state.current_round = number
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # another admin generated it at the same moment
        db.session.rollback()
        raise RoundConflict(f"Round {number} was already generated.") from exc
    clear_leaderboard()
    round_sets.enqueue(fresh_sets)
    if ended:
        mail_round_results(previous_round)
    return matches


def _end_round(number: int) -> bool:
    """Mark round `number` closed unless it already is (compare-and-set, not committed); whether it was open."""
    return (
        db.session.execute(
            sa.update(Round)
            .where(Round.number == number, Round.closed_at.is_(None))
            .values(closed_at=clock.now())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def generated_round(number: int) -> Round:
    """Round `number`; NoSuchRound, naming the rounds there are, when it was never generated."""
    found = db.session.get(Round, number)
    if found is None:
        current = competition.get_state().current_round
        there = "no round has been generated yet" if current == 0 else f"rounds go from 1 to {current}"
        raise NoSuchRound(f"There is no round {number}: {there}.")
    return found


def close_round(number: int, actor=None) -> Round:
    """End round `number` now: its final scores (on the private subset) are published (pages, API, leaderboard) and
    mailed to its teams; the audit log records who did it (actor: default the request's user).

    Raises NoSuchRound when it was never generated, RoundConflict when it is already closed.
    """
    found = generated_round(number)
    if not _end_round(number):
        db.session.rollback()
        raise RoundConflict(f"Round {number} is already closed: its final scores are published.")
    audit.record(
        actor,
        "close-round",
        {"round": number, "open": True},
        {"round": number, "open": False},
        target=f"round {number}",
    )
    db.session.commit()
    db.session.refresh(found)
    clear_leaderboard()
    mail_round_results(number)
    return found


def mail_round_results(number: int) -> None:
    """Mail every team of round `number` its final scores (private subset), as attacker and as defender (the
    attacks that count)."""
    matches = (
        db.session.scalars(
            sa.select(Match)
            .where(Match.round == number)
            .options(joinedload(Match.attacker), joinedload(Match.defender))
            .order_by(Match.id)
        )
        .unique()
        .all()
    )
    attacks = latest_attacks([m.id for m in matches])
    teams = {m.attacker_team_id: m.attacker for m in matches} | {m.defender_team_id: m.defender for m in matches}
    for team_id, team in teams.items():
        as_attacker = [(m, attacks.get(m.id)) for m in matches if m.attacker_team_id == team_id]
        as_defender = [(m, attacks.get(m.id)) for m in matches if m.defender_team_id == team_id]
        mail.mail_team(
            team,
            f"[SRS] Round {number} closed: final scores on the private subset",
            "round_closed",
            number=number,
            as_attacker=as_attacker,
            as_defender=as_defender,
        )


def round_closed_at(number: int):
    """When round `number` closed (None while it is open or if it does not exist)."""
    return db.session.scalar(sa.select(Round.closed_at).where(Round.number == number))


def matches_page(round_number: int, team_id: int | None, page: int, per_page: int):
    """A page of a round's matches, the given team's own first, then by attacker and defender name."""
    attacker, defender = aliased(Team), aliased(Team)
    own_first = sa.case((sa.or_(Match.attacker_team_id == team_id, Match.defender_team_id == team_id), 0), else_=1)
    query = (
        sa.select(Match)
        .join(attacker, Match.attacker_team_id == attacker.id)
        .join(defender, Match.defender_team_id == defender.id)
        .where(Match.round == round_number)
        .options(joinedload(Match.attacker), joinedload(Match.defender))
        .order_by(own_first, attacker.name, defender.name)
    )
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def round_matches(round_number: int) -> list[Match]:
    return list(db.session.scalars(sa.select(Match).where(Match.round == round_number).order_by(Match.id)))


def match_as_dict(m: Match) -> dict:
    return {
        "id": m.id,
        "round": m.round,
        "attacker_team_id": m.attacker_team_id,
        "defender_team_id": m.defender_team_id,
        "attacker_team_name": m.attacker.name,
        "defender_team_name": m.defender.name,
    }
