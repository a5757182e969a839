"""Leaderboards per round and across rounds, computed in a fixed number of queries and cached in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from app.charts import tradeoff_svg
from app.evaluation.leaderboard import (
    TeamRound,
    aggregate_rounds,
    pareto_front,
    rank_round,
    utility_cost,
)
from app.extensions import db
from app.models import Attack, Defence, Match, Team, User
from app.services import leaderboard_cache
from app.services.rounds import latest_defences


def _round_teams(number: int) -> list[TeamRound]:
    """The teams of a generated round, from two queries: its matches (with pinned utilities) and their attacks."""
    attacker, defender = aliased(Team), aliased(Team)
    matches = db.session.execute(
        sa.select(
            Match.id,
            Match.attacker_team_id,
            attacker.name,
            Match.defender_team_id,
            defender.name,
            Defence.utility_score,
        )
        .join(attacker, attacker.id == Match.attacker_team_id)
        .join(defender, defender.id == Match.defender_team_id)
        .join(Defence, Defence.id == Match.defence_id)
        .where(Match.round == number)
    ).all()
    # A match's latest attack is the one from the last uploaded submission, not the last to finish scoring.
    latest = (
        sa.select(Attack.match_id, sa.func.max(Attack.submission_id).label("submission_id"))
        .join(Match, Match.id == Attack.match_id)
        .where(Match.round == number)
        .group_by(Attack.match_id)
    ).subquery()
    auc = dict(
        db.session.execute(
            sa.select(Attack.match_id, Attack.roc_auc).join(
                latest,
                sa.and_(Attack.match_id == latest.c.match_id, Attack.submission_id == latest.c.submission_id),
            )
        ).all()
    )
    teams: dict[int, TeamRound] = {}

    def team(team_id: int, name: str) -> TeamRound:
        return teams.setdefault(team_id, TeamRound(team_id, name, None, [], 0, []))

    for match_id, attacker_id, attacker_name, defender_id, defender_name, utility in matches:
        att = team(attacker_id, attacker_name)
        att.nb_matches_as_attacker += 1
        dfn = team(defender_id, defender_name)
        dfn.utility_score = utility
        if match_id in auc:
            att.attack_aucs.append(auc[match_id])
            dfn.leakage_aucs.append(auc[match_id])
    return list(teams.values())


def _preview_teams() -> list[TeamRound]:
    """Before a round exists: every student team with the utility of its latest successful defence."""
    admin_teams = sa.select(User.team_id).where(User.is_admin, User.team_id.is_not(None))
    teams = db.session.execute(sa.select(Team.id, Team.name).where(Team.id.not_in(admin_teams))).all()
    defences = latest_defences()
    return [
        TeamRound(tid, name, defences[tid].utility_score if tid in defences else None, [], 0, []) for tid, name in teams
    ]


# The trade-off plot's horizontal axis: the original utility cost, or the bandwidth overhead (issue 8).
AXES = ("utility", "overhead")
_AXIS_LABELS = {
    "utility": "Utility cost (lower is better)",
    "overhead": "Bandwidth overhead against undefended traffic, % (lower is better)",
}


def _pinned_overheads(number: int) -> dict[int, dict]:
    """The overheads of the defence each defender of a round has pinned (preview: its latest), by team id."""
    if number == 0 or not _generated(number):
        return {tid: d.overheads for tid, d in latest_defences().items() if d.overheads}
    rows = db.session.execute(
        sa.select(Match.defender_team_id, Defence.overheads)
        .join(Defence, Defence.id == Match.defence_id)
        .where(Match.round == number)
        .distinct()
    ).all()
    return {team_id: overheads for team_id, overheads in rows if overheads}


def _plot(rows: list[dict], title: str, axis: str = "utility", overheads: dict[int, dict] | None = None):
    """The trade-off SVG and its points: x is the utility cost, or the bandwidth overhead (%) with axis="overhead"."""
    points = []
    for r in rows:
        if not r["utility_score"] or r["privacy_leakage"] is None:
            continue
        point = {"name": r["team_name"], "leakage": r["privacy_leakage"]}
        if axis == "overhead":
            measured = (overheads or {}).get(r["team_id"]) or {}
            if measured.get("bandwidth_total") is None:
                continue  # measured before overheads existed
            point.update(cost=measured["bandwidth_total"], time=measured.get("time"))
        else:
            point["cost"] = utility_cost(r["utility_score"])
        points.append(point)
    front = set(pareto_front([(p["cost"], p["leakage"]) for p in points]))
    for i, p in enumerate(points):
        p["on_front"] = i in front
    return tradeoff_svg(points, title, _AXIS_LABELS[axis]), points


class NoSuchRound(LookupError):
    """A round number with no leaderboard (answered 404 with the reason)."""


def board_round(requested: int | None, current: int) -> int:
    """The round a leaderboard request names (default: the current one), checked: rounds go from 1 to the
    current round; before round 1 is generated, round 0 is the preview of the utilities."""
    number = current if requested is None else requested
    if current == 0 and number == 0:
        return 0
    if not 1 <= number <= current:
        if current == 0:
            raise NoSuchRound(f"There is no round {number}: no round has been generated yet.")
        raise NoSuchRound(f"There is no round {number}: rounds go from 1 to {current}.")
    return number


def _generated(number: int) -> bool:
    return db.session.scalar(sa.select(sa.func.count(Match.id)).where(Match.round == number)) > 0


def _round_data(number: int, axis: str = "utility") -> dict:
    generated = _generated(number)
    rows = [r.to_dict() for r in rank_round(_round_teams(number) if generated else _preview_teams())]
    if axis == "overhead":
        title = f"Round {number}: bandwidth overhead against privacy leakage"
        svg, points = _plot(rows, title, axis, _pinned_overheads(number))
    else:
        svg, points = _plot(rows, f"Round {number}: utility cost against privacy leakage")
    return {
        "round": number,
        "generated": generated,
        "rows": rows,
        "plot_svg": svg,
        "plot_points": points,
        "axis": axis,
    }


def _overall_data(last_round: int, how: str) -> dict:
    per_round = {n: rank_round(_round_teams(n)) for n in range(1, last_round + 1)}
    rows = [r.to_dict() for r in aggregate_rounds(per_round, how)]
    return {"aggregation": how, "rounds": list(per_round), "rows": rows}


def round_board(number: int) -> dict:
    """The leaderboard of one round, cached: rows (rank, team, utility, attack performance, score, leakage,
    messages), and the trade-off plot (SVG) with its data. Round 0, or a round not generated yet, previews the
    utilities."""
    key = f"round:{number}"
    return json.loads(leaderboard_cache.get_or_compute(key, lambda: json.dumps(_round_data(number)).encode()))


def round_html(number: int, render: Callable[[dict], str], axis: str = "utility") -> str:
    """render(board) of one round, cached: the page's body is the same for everyone, rendered once per period.

    `axis` picks the trade-off plot's horizontal axis (one of AXES): the utility cost or the bandwidth overhead.
    """
    key = f"html:round:{number}" if axis == "utility" else f"html:round:{number}:{axis}"
    return leaderboard_cache.get_or_compute(key, lambda: render(_round_data(number, axis)).encode()).decode()


def overall_board(last_round: int) -> dict:
    """Rounds 1..last_round combined by LEADERBOARD_AGGREGATION (sum, mean or best of each team's scores), cached."""
    how = current_app.config["LEADERBOARD_AGGREGATION"]
    key = f"overall:{how}:{last_round}"
    return json.loads(
        leaderboard_cache.get_or_compute(key, lambda: json.dumps(_overall_data(last_round, how)).encode())
    )


def overall_html(last_round: int, render: Callable[[dict], str]) -> str:
    """render(board) of the overall leaderboard, cached like round_html."""
    how = current_app.config["LEADERBOARD_AGGREGATION"]
    key = f"html:overall:{how}:{last_round}"
    return leaderboard_cache.get_or_compute(key, lambda: render(_overall_data(last_round, how)).encode()).decode()
