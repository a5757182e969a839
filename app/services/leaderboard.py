"""Leaderboards per round and across rounds, computed in a fixed number of queries and cached in Redis."""

from __future__ import annotations

import json

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
    latest = (
        sa.select(sa.func.max(Attack.id))
        .join(Match, Match.id == Attack.match_id)
        .where(Match.round == number)
        .group_by(Attack.match_id)
    ).scalar_subquery()
    auc = dict(db.session.execute(sa.select(Attack.match_id, Attack.roc_auc).where(Attack.id.in_(latest))).all())
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


def _plot(rows: list[dict], title: str) -> tuple[str, list[dict]]:
    points = [
        {"name": r["team_name"], "cost": utility_cost(r["utility_score"]), "leakage": r["privacy_leakage"]}
        for r in rows
        if r["utility_score"] and r["privacy_leakage"] is not None
    ]
    front = set(pareto_front([(p["cost"], p["leakage"]) for p in points]))
    for i, p in enumerate(points):
        p["on_front"] = i in front
    return tradeoff_svg(points, title), points


def _cached(key: str, compute) -> dict:
    return json.loads(leaderboard_cache.get_or_compute(key, lambda: json.dumps(compute()).encode()))


def cached_html(key: str, render) -> str:
    """A rendered fragment of a leaderboard page, cached and cleared with the leaderboard itself."""
    return leaderboard_cache.get_or_compute(f"html:{key}", lambda: render().encode()).decode()


def round_board(number: int) -> dict:
    """The leaderboard of one round: rows (rank, team, utility, attack performance, score, leakage, messages),
    and the trade-off plot (SVG) with its data. Round 0, or a round not generated yet, previews the utilities."""

    def compute() -> dict:
        generated = db.session.scalar(sa.select(sa.func.count(Match.id)).where(Match.round == number)) > 0
        rows = [r.to_dict() for r in rank_round(_round_teams(number) if generated else _preview_teams())]
        svg, points = _plot(rows, f"Round {number}: utility cost against privacy leakage")
        return {"round": number, "generated": generated, "rows": rows, "plot_svg": svg, "plot_points": points}

    return _cached(f"round:{number}", compute)


def overall_board(last_round: int) -> dict:
    """Rounds 1..last_round combined by LEADERBOARD_AGGREGATION (sum, mean or best of each team's scores)."""
    how = current_app.config["LEADERBOARD_AGGREGATION"]

    def compute() -> dict:
        per_round = {n: rank_round(_round_teams(n)) for n in range(1, last_round + 1)}
        rows = [r.to_dict() for r in aggregate_rounds(per_round, how)]
        return {"aggregation": how, "rounds": list(per_round), "rows": rows}

    return _cached(f"overall:{how}:{last_round}", compute)
