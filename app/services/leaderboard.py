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
from app.services import leaderboard_cache, scores
from app.services.rounds import latest_defences


def _round_teams(number: int, public: bool) -> list[TeamRound]:
    """The teams of a generated round, from two queries: its matches (with pinned utilities) and their attacks.

    With `public` (the round is open) attacks count with their public-subset ROC-AUC, and an attack without one
    counts as not done; otherwise with the full ROC-AUC.
    """
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
    counted = db.session.execute(
        sa.select(Attack.match_id, Attack.roc_auc, Attack.public_scores).join(
            latest,
            sa.and_(Attack.match_id == latest.c.match_id, Attack.submission_id == latest.c.submission_id),
        )
    ).all()
    if public:
        auc = {m: p.get("roc_auc") for m, _, p in counted if p and p.get("roc_auc") is not None}
    else:
        auc = {m: full for m, full, _ in counted}
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


def _subset(number: int) -> str:
    """'full' for a closed round, 'public' otherwise: part of every cache key, so that a board computed just
    before a round closes is never served after it (nor the reverse)."""
    return scores.FULL if scores.is_closed(number) else scores.PUBLIC


def _round_data(number: int, subset: str) -> dict:
    generated = db.session.scalar(sa.select(sa.func.count(Match.id)).where(Match.round == number)) > 0
    public = subset == scores.PUBLIC
    rows = [r.to_dict() for r in rank_round(_round_teams(number, public) if generated else _preview_teams())]
    svg, points = _plot(rows, f"Round {number}: utility cost against privacy leakage")
    return {
        "round": number,
        "generated": generated,
        "public_subset": generated and public,
        "rows": rows,
        "plot_svg": svg,
        "plot_points": points,
    }


def _overall_data(last_round: int, how: str) -> dict:
    closed = scores.closed_rounds()
    per_round = {n: rank_round(_round_teams(n, n not in closed)) for n in range(1, last_round + 1)}
    rows = [r.to_dict() for r in aggregate_rounds(per_round, how)]
    open_rounds = [n for n in per_round if n not in closed]
    return {"aggregation": how, "rounds": list(per_round), "public_subset_rounds": open_rounds, "rows": rows}


def round_board(number: int) -> dict:
    """The leaderboard of one round, cached: rows (rank, team, utility, attack performance, score, leakage,
    messages), and the trade-off plot (SVG) with its data. Round 0, or a round not generated yet, previews the
    utilities. While the round is open, attacks count with their public-subset scores (`public_subset`)."""
    subset = _subset(number)
    key = f"round:{number}:{subset}"
    return json.loads(leaderboard_cache.get_or_compute(key, lambda: json.dumps(_round_data(number, subset)).encode()))


def round_html(number: int, render: Callable[[dict], str]) -> str:
    """render(board) of one round, cached: the page's body is the same for everyone, rendered once per period."""
    subset = _subset(number)
    key = f"html:round:{number}:{subset}"
    return leaderboard_cache.get_or_compute(key, lambda: render(_round_data(number, subset)).encode()).decode()


def overall_board(last_round: int) -> dict:
    """Rounds 1..last_round combined by LEADERBOARD_AGGREGATION (sum, mean or best of each team's scores), cached."""
    how = current_app.config["LEADERBOARD_AGGREGATION"]
    key = f"overall:{how}:{last_round}:{_subset(last_round)}"
    return json.loads(
        leaderboard_cache.get_or_compute(key, lambda: json.dumps(_overall_data(last_round, how)).encode())
    )


def overall_html(last_round: int, render: Callable[[dict], str]) -> str:
    """render(board) of the overall leaderboard, cached like round_html."""
    how = current_app.config["LEADERBOARD_AGGREGATION"]
    key = f"html:overall:{how}:{last_round}:{_subset(last_round)}"
    return leaderboard_cache.get_or_compute(key, lambda: render(_overall_data(last_round, how)).encode()).decode()
