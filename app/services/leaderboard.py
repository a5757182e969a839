"""Leaderboards per round and across rounds, computed in a fixed number of queries and cached in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from app.charts import tradeoff_svg
from app.evaluation.confidence import half_width
from app.evaluation.leaderboard import (
    TeamRound,
    aggregate_rounds,
    pareto_front,
    rank_round,
    utility_cost,
)
from app.evaluation.tradeoff_board import TradeoffTeam, percent_to_fraction, rank_tradeoff_round
from app.extensions import db
from app.models import Attack, BaselineRun, Defence, Match, SubmissionStatus, Team, User
from app.services import leaderboard_cache, scores
from app.services.rounds import NoSuchRound, latest_defences

SCORINGS = ("original", "tradeoff")


def scoring() -> str:
    """The scoring mode of the leaderboards (LEADERBOARD_SCORING): `original` or `tradeoff`."""
    mode = current_app.config.get("LEADERBOARD_SCORING") or "original"
    if mode not in SCORINGS:
        raise ValueError(f"LEADERBOARD_SCORING must be one of {', '.join(SCORINGS)}, got {mode!r}")
    return mode


def _latest_rows(number: int) -> list:
    """Each match's counted attack in the round: (match id, ROC-AUC, intervals, public scores, provenance)."""
    # A match's latest attack is the one from the last uploaded submission, not the last to finish scoring.
    latest = (
        sa.select(Attack.match_id, sa.func.max(Attack.submission_id).label("submission_id"))
        .join(Match, Match.id == Attack.match_id)
        .where(Match.round == number)
        .group_by(Attack.match_id)
    ).subquery()
    return db.session.execute(
        sa.select(Attack.match_id, Attack.roc_auc, Attack.intervals, Attack.public_scores, Attack.provenance).join(
            latest,
            sa.and_(Attack.match_id == latest.c.match_id, Attack.submission_id == latest.c.submission_id),
        )
    ).all()


def _latest_attacks(
    number: int, public: bool = False, rows: list | None = None
) -> dict[int, tuple[float, dict | None]]:
    """Each match's counted attack in the round: match id -> (ROC-AUC, intervals).

    With `public` (the round is open) attacks count with their public-subset ROC-AUC and intervals, and an
    attack without one counts as not done; otherwise with the final ones (on the private captures).
    """
    rows = _latest_rows(number) if rows is None else rows
    if public:
        return {
            match_id: (p["roc_auc"], p.get("intervals"))
            for match_id, _, _, p, _ in rows
            if p and p.get("roc_auc") is not None
        }
    return {match_id: (auc, intervals) for match_id, auc, intervals, _, _ in rows}


def _counted_subset(rows: list, public: bool) -> tuple[str, str]:
    """(subset, label) of the scores a round's board counts: "public subset (10 captures)" while it is open,
    "private subset (20 captures)" once closed (see scores.final_label)."""
    if public:
        sizes = {(p or {}).get("nb_captures") for _, _, _, p, _ in rows if p and p.get("roc_auc") is not None}
        return scores.PUBLIC, scores.subset_label(scores.PUBLIC, sizes.pop() if len(sizes) == 1 else None)
    return scores.final_label(rows)


def _round_matches(number: int) -> list:
    attacker, defender = aliased(Team), aliased(Team)
    return db.session.execute(
        sa.select(
            Match.id,
            Match.attacker_team_id,
            attacker.name,
            Match.defender_team_id,
            defender.name,
            Defence.utility_score,
            Defence.id,
            Defence.overheads,
        )
        .join(attacker, attacker.id == Match.attacker_team_id)
        .join(defender, defender.id == Match.defender_team_id)
        .join(Defence, Defence.id == Match.defence_id)
        .where(Match.round == number)
        .order_by(Match.id)
    ).all()


def _baselines(defence_ids) -> dict[int, tuple[float, dict | None]]:
    """Succeeded baseline estimates of these defences: defence id -> (ROC-AUC, intervals)."""
    ids = list(defence_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(BaselineRun.defence_id, BaselineRun.roc_auc, BaselineRun.intervals).where(
            BaselineRun.defence_id.in_(ids), BaselineRun.status == SubmissionStatus.SUCCEEDED
        )
    ).all()
    return {defence_id: (auc, intervals) for defence_id, auc, intervals in rows}


def _round_teams(
    number: int, matches: list | None = None, attacks: dict | None = None, public: bool = False
) -> list[TeamRound]:
    """The teams of a generated round, from two queries: its matches (with pinned utilities) and their attacks
    (public-subset scores with `public`)."""
    matches = _round_matches(number) if matches is None else matches
    attacks = _latest_attacks(number, public) if attacks is None else attacks
    teams: dict[int, TeamRound] = {}

    def team(team_id: int, name: str) -> TeamRound:
        return teams.setdefault(team_id, TeamRound(team_id, name, None, [], 0, []))

    for match_id, attacker_id, attacker_name, defender_id, defender_name, utility, _, _ in matches:
        att = team(attacker_id, attacker_name)
        att.nb_matches_as_attacker += 1
        dfn = team(defender_id, defender_name)
        dfn.utility_score = utility
        if match_id in attacks:
            auc, intervals = attacks[match_id]
            att.attack_aucs.append(auc)
            dfn.leakage_aucs.append(auc)
            att.attack_half_widths.append(half_width(intervals, "roc_auc"))
            dfn.leakage_half_widths.append(half_width(intervals, "roc_auc"))
    return list(teams.values())


def _overheads(overheads: dict | None) -> tuple[float | None, float | None]:
    """(total bandwidth, time) overheads as fractions, from Defence.overheads in percent."""
    overheads = overheads or {}
    return percent_to_fraction(overheads.get("bandwidth_total")), percent_to_fraction(overheads.get("time"))


def _tradeoff_teams(matches: list, attacks: dict) -> list[TradeoffTeam]:
    """The teams of a generated round as the tradeoff mode needs them (leakage, baseline, overheads)."""
    baselines = _baselines({m[6] for m in matches})
    teams: dict[int, TradeoffTeam] = {}

    def team(team_id: int, name: str) -> TradeoffTeam:
        return teams.setdefault(team_id, TradeoffTeam(team_id, name, False, [], []))

    for match_id, attacker_id, attacker_name, defender_id, defender_name, _, defence_id, overheads in matches:
        auc, intervals = attacks.get(match_id, (None, None))
        att = team(attacker_id, attacker_name)
        att.match_aucs.append(auc)
        att.match_half_widths.append(half_width(intervals, "roc_auc"))
        dfn = team(defender_id, defender_name)
        dfn.has_defence = True
        dfn.bandwidth_overhead, dfn.time_overhead = _overheads(overheads)
        if defence_id in baselines:
            dfn.baseline_auc = baselines[defence_id][0]
            dfn.baseline_half_width = half_width(baselines[defence_id][1], "roc_auc")
        if auc is not None:
            dfn.attacker_aucs.append(auc)
            dfn.attacker_half_widths.append(half_width(intervals, "roc_auc"))
    return list(teams.values())


def _student_teams() -> list:
    admin_teams = sa.select(User.team_id).where(User.is_admin, User.team_id.is_not(None))
    return db.session.execute(sa.select(Team.id, Team.name).where(Team.id.not_in(admin_teams))).all()


def _preview_teams(defences: dict[int, Defence] | None = None) -> list[TeamRound]:
    """Before a round exists: every student team with the utility of its latest successful defence."""
    defences = latest_defences() if defences is None else defences
    return [
        TeamRound(tid, name, defences[tid].utility_score if tid in defences else None, [], 0, [])
        for tid, name in _student_teams()
    ]


# The trade-off plot's horizontal axis: the original utility cost, or the bandwidth overhead.
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


def _preview_tradeoff_teams(defences: dict[int, Defence]) -> list[TradeoffTeam]:
    """Before a round exists: every student team's latest defence, its leakage the baseline's."""
    baselines = _baselines(d.id for d in defences.values())
    teams = []
    for tid, name in _student_teams():
        defence = defences.get(tid)
        team = TradeoffTeam(tid, name, defence is not None, [], [])
        if defence is not None:
            team.bandwidth_overhead, team.time_overhead = _overheads(defence.overheads)
            if defence.id in baselines:
                team.baseline_auc = baselines[defence.id][0]
                team.baseline_half_width = half_width(baselines[defence.id][1], "roc_auc")
        teams.append(team)
    return teams


def _plot(
    rows: list[dict],
    title: str,
    baseline_aucs: dict[int, float],
    axis: str = "utility",
    overheads: dict[int, dict] | None = None,
) -> tuple[str, list[dict]]:
    """Every defence as a point: the attackers' mean ROC-AUC, or the baseline's until an attacker scores; x is the
    utility cost, or the bandwidth overhead (%) with axis="overhead"."""
    points = []
    for r in rows:
        if not r["utility_score"]:
            continue
        leakage, estimate = r["privacy_leakage"], False
        if leakage is None and r["team_id"] in baseline_aucs:
            leakage, estimate = baseline_aucs[r["team_id"]], True
        if leakage is None:
            continue
        point = {"name": r["team_name"], "leakage": leakage}
        if axis == "overhead":
            measured = (overheads or {}).get(r["team_id"]) or {}
            if measured.get("bandwidth_total") is None:
                continue  # measured before overheads existed
            point.update(cost=measured["bandwidth_total"], time=measured.get("time"))
        else:
            point["cost"] = utility_cost(r["utility_score"])
        point["estimate"] = estimate
        point["baseline"] = baseline_aucs.get(r["team_id"])
        points.append(point)
    front = set(pareto_front([(p["cost"], p["leakage"]) for p in points]))
    for i, p in enumerate(points):
        p["on_front"] = i in front
    return tradeoff_svg(points, title, _AXIS_LABELS[axis]), points


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


def _subset(number: int) -> str:
    """'private' for a closed round, 'public' otherwise: part of every cache key, so that a board computed just
    before a round closes is never served after it (nor the reverse)."""
    return scores.PRIVATE if scores.is_closed(number) else scores.PUBLIC


def _ranked(number: int, mode: str, public: bool) -> tuple[bool, list[dict], dict[int, float], tuple[str, str]]:
    """Whether the round is generated, its rows in the mode's order, its defences' baseline ROC-AUCs by team, and
    (subset, label) of the attack scores counted (see _counted_subset).

    In the tradeoff mode a row holds the tradeoff columns (rank and score of that mode) and, for the plot, the
    exports and the dashboard, the original columns (utility score, attack performance, privacy leakage).
    With `public` (the round is open) attacks count with their public-subset scores.
    """
    generated = _generated(number)
    if generated:
        matches, latest = _round_matches(number), _latest_rows(number)
        attacks, counted = _latest_attacks(number, public, latest), _counted_subset(latest, public)
        original = rank_round(_round_teams(number, matches, attacks))
        defence_of = {m[3]: m[6] for m in matches}
        tradeoff = (lambda: _tradeoff_teams(matches, attacks)) if mode == "tradeoff" else None
    else:
        defences = latest_defences()
        counted = (scores.PUBLIC if public else scores.PRIVATE, None)
        original = rank_round(_preview_teams(defences))
        defence_of = {tid: d.id for tid, d in defences.items()}
        tradeoff = (lambda: _preview_tradeoff_teams(defences)) if mode == "tradeoff" else None
    baselines = _baselines(defence_of.values())
    baseline_aucs = {tid: baselines[did][0] for tid, did in defence_of.items() if did in baselines}
    rows = [r.to_dict() for r in original]
    if tradeoff is not None:
        by_team = {r["team_id"]: r for r in rows}
        rows = [{**by_team[r.team_id], **r.to_dict()} for r in rank_tradeoff_round(tradeoff())]
    for row in rows:
        row["baseline_roc_auc"] = baseline_aucs.get(row["team_id"])
    return generated, rows, baseline_aucs, counted


def _round_data(number: int, mode: str, subset: str, axis: str = "utility") -> dict:
    public = subset == scores.PUBLIC
    generated, rows, baseline_aucs, (subset, note) = _ranked(number, mode, public)
    # The plot says which captures the attackers' leakage counts: the public subset, or the private one.
    on = f", attacks scored {scores.on_label(subset, note)}" if generated and note else ""
    if axis == "overhead":
        title = f"Round {number}: bandwidth overhead against privacy leakage{on}"
        svg, points = _plot(rows, title, baseline_aucs, axis, _pinned_overheads(number))
    else:
        svg, points = _plot(rows, f"Round {number}: utility cost against privacy leakage{on}", baseline_aucs)
    return {
        "round": number,
        "scoring": mode,
        "generated": generated,
        "public_subset": generated and public,
        # Which captures the attack scores count: "public" (open round), "private" (closed), "all" (scored before
        # final scores left out the public subset); the note says it in words, with the number of captures.
        "scores_subset": subset if generated else None,
        "scores_note": note if generated else None,
        "rows": rows,
        "plot_svg": svg,
        "plot_points": points,
        "axis": axis,
    }


def _overall_data(last_round: int, how: str, mode: str) -> dict:
    closed = scores.closed_rounds()
    per_round = {}
    for n in range(1, last_round + 1):
        ranked = _ranked(n, mode, n not in closed)[1]
        per_round[n] = [_Scored(r["team_id"], r["team_name"], r["score"]) for r in ranked]
    rows = [r.to_dict() for r in aggregate_rounds(per_round, how)]
    open_rounds = [n for n in per_round if n not in closed]
    return {
        "aggregation": how,
        "scoring": mode,
        "rounds": list(per_round),
        "public_subset_rounds": open_rounds,
        "rows": rows,
    }


class _Scored:
    """What aggregate_rounds reads of a round's row, in either scoring mode."""

    def __init__(self, team_id: int, team_name: str, score: float | None) -> None:
        self.team_id, self.team_name, self.score = team_id, team_name, score


def round_board(number: int) -> dict:
    """The leaderboard of one round in the LEADERBOARD_SCORING mode, cached: rows (rank, team, the mode's columns,
    score, messages), and the trade-off plot (SVG) with its data. Round 0, or a round not generated yet, previews
    the latest defences. While the round is open, attacks count with their public-subset scores (`public_subset`).
    The cache key holds the mode and the subset: changing either recomputes the boards."""
    mode, subset = scoring(), _subset(number)
    key = f"round:{mode}:{number}:{subset}"
    return json.loads(
        leaderboard_cache.get_or_compute(key, lambda: json.dumps(_round_data(number, mode, subset)).encode())
    )


def round_html(number: int, render: Callable[[dict], str], axis: str = "utility") -> str:
    """render(board) of one round, cached: the page's body is the same for everyone, rendered once per period.

    `axis` picks the trade-off plot's horizontal axis (one of AXES): the utility cost or the bandwidth overhead.
    The cache key holds the scoring mode, the axis and the subset (public while the round is open, private after).
    """
    mode, subset = scoring(), _subset(number)
    key = f"html:round:{mode}:{number}:{axis}:{subset}"
    return leaderboard_cache.get_or_compute(
        key, lambda: render(_round_data(number, mode, subset, axis)).encode()
    ).decode()


def overall_board(last_round: int) -> dict:
    """Rounds 1..last_round combined by LEADERBOARD_AGGREGATION (sum, mean or best of each team's scores), cached."""
    how, mode = current_app.config["LEADERBOARD_AGGREGATION"], scoring()
    key = f"overall:{mode}:{how}:{last_round}:{_subset(last_round)}"
    return json.loads(
        leaderboard_cache.get_or_compute(key, lambda: json.dumps(_overall_data(last_round, how, mode)).encode())
    )


def overall_html(last_round: int, render: Callable[[dict], str]) -> str:
    """render(board) of the overall leaderboard, cached like round_html."""
    how, mode = current_app.config["LEADERBOARD_AGGREGATION"], scoring()
    key = f"html:overall:{mode}:{how}:{last_round}:{_subset(last_round)}"
    return leaderboard_cache.get_or_compute(key, lambda: render(_overall_data(last_round, how, mode)).encode()).decode()
