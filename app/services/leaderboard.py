"""Leaderboards per round and across rounds, computed in a fixed number of queries and cached in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

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


class Counted(NamedTuple):
    """The scores of a match's counted attack on the subset the board counts."""

    roc_auc: float
    accuracy: float | None
    top5_accuracy: float | None
    intervals: dict | None


def _latest_rows(number: int) -> list:
    """Each match's counted attack in the round: (match id, ROC-AUC, intervals, public scores, provenance,
    accuracy, top-5 accuracy)."""
    # A match's latest attack is the one from the last uploaded submission, not the last to finish scoring.
    latest = (
        sa.select(Attack.match_id, sa.func.max(Attack.submission_id).label("submission_id"))
        .join(Match, Match.id == Attack.match_id)
        .where(Match.round == number)
        .group_by(Attack.match_id)
    ).subquery()
    return db.session.execute(
        sa.select(
            Attack.match_id,
            Attack.roc_auc,
            Attack.intervals,
            Attack.public_scores,
            Attack.provenance,
            Attack.accuracy,
            Attack.top5_accuracy,
        ).join(
            latest,
            sa.and_(Attack.match_id == latest.c.match_id, Attack.submission_id == latest.c.submission_id),
        )
    ).all()


def _latest_attacks(number: int, public: bool = False, rows: list | None = None) -> dict[int, Counted]:
    """Each match's counted attack in the round: match id -> its Counted scores.

    With `public` (the round is open) attacks count with their public-subset scores and intervals, and an
    attack without one counts as not done; otherwise with the final ones (on the private captures).
    """
    rows = _latest_rows(number) if rows is None else rows
    if public:
        return {
            row[0]: Counted(p["roc_auc"], p.get("accuracy"), p.get("top5_accuracy"), p.get("intervals"))
            for row in rows
            if (p := row[3]) and p.get("roc_auc") is not None
        }
    return {row[0]: Counted(row[1], row[5], row[6], row[2]) for row in rows}


def _counted_subset(rows: list, public: bool) -> tuple[str, str]:
    """(subset, label) of the scores a round's board counts: "public subset (10 captures)" while it is open,
    "private subset (20 captures)" once closed (see scores.final_label)."""
    if public:
        sizes = {p.get("nb_captures") for p in (row[3] for row in rows) if p and p.get("roc_auc") is not None}
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


def _baselines(defence_ids) -> dict[int, Counted]:
    """Succeeded baseline estimates of these defences: defence id -> their Counted scores."""
    ids = list(defence_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(
            BaselineRun.defence_id,
            BaselineRun.roc_auc,
            BaselineRun.accuracy,
            BaselineRun.top5_accuracy,
            BaselineRun.intervals,
        ).where(BaselineRun.defence_id.in_(ids), BaselineRun.status == SubmissionStatus.SUCCEEDED)
    ).all()
    return {row[0]: Counted(*row[1:]) for row in rows}


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
            auc, intervals = attacks[match_id].roc_auc, attacks[match_id].intervals
            att.attack_aucs.append(auc)
            dfn.leakage_aucs.append(auc)
            att.attack_half_widths.append(half_width(intervals, "roc_auc"))
            dfn.leakage_half_widths.append(half_width(intervals, "roc_auc"))
    return list(teams.values())


def _overheads(overheads: dict | None) -> tuple[float | None, float | None]:
    """(total bandwidth, time) overheads as fractions, from Defence.overheads in percent."""
    overheads = overheads or {}
    return percent_to_fraction(overheads.get("bandwidth_total")), percent_to_fraction(overheads.get("time"))


def _tradeoff_teams(matches: list, attacks: dict, measure: str = "accuracy") -> list[TradeoffTeam]:
    """The teams of a generated round as the tradeoff mode needs them (leakage, baseline, overheads).

    measure="roc_auc" fills the accuracies with ROC-AUCs and leaves the top-5 out: ranked with nb_classes=2 this
    is the board of the previous formula, advantage = 2 × (ROC-AUC − 0.5) (see previous_formula_diff)."""
    baselines = _baselines({m[6] for m in matches})
    teams: dict[int, TradeoffTeam] = {}

    def team(team_id: int, name: str) -> TradeoffTeam:
        return teams.setdefault(team_id, TradeoffTeam(team_id, name, False, [], []))

    for match_id, attacker_id, attacker_name, defender_id, defender_name, _, defence_id, overheads in matches:
        counted = attacks.get(match_id)
        value = None if counted is None else getattr(counted, measure)
        width = half_width(counted.intervals, measure) if counted else None
        top5 = None if counted is None or measure != "accuracy" else counted.top5_accuracy
        att = team(attacker_id, attacker_name)
        att.match_accuracies.append(value)
        att.match_half_widths.append(width)
        att.match_top5.append(top5)
        dfn = team(defender_id, defender_name)
        dfn.has_defence = True
        dfn.bandwidth_overhead, dfn.time_overhead = _overheads(overheads)
        if defence_id in baselines:
            _set_baseline(dfn, baselines[defence_id], measure)
        if value is not None:
            dfn.attacker_accuracies.append(value)
            dfn.attacker_half_widths.append(width)
            dfn.attacker_top5.append(top5)
    return list(teams.values())


def _set_baseline(team: TradeoffTeam, baseline: Counted, measure: str = "accuracy") -> None:
    team.baseline_accuracy = getattr(baseline, measure)
    team.baseline_top5 = baseline.top5_accuracy if measure == "accuracy" else None
    team.baseline_half_width = half_width(baseline.intervals, measure)


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
                _set_baseline(team, baselines[defence.id])
        teams.append(team)
    return teams


def _plot(
    rows: list[dict],
    title: str,
    accuracies: dict[int, tuple[float | None, float | None]],
    axis: str = "utility",
    overheads: dict[int, dict] | None = None,
) -> tuple[str, list[dict]]:
    """Every defence as a point: the best attacker's accuracy against it, or the baseline's until an attacker
    scores (accuracies: team id -> (best attacker's, baseline's)); x is the utility cost, or the bandwidth
    overhead (%) with axis="overhead"."""
    points = []
    for r in rows:
        if not r["utility_score"]:
            continue
        best, baseline = accuracies.get(r["team_id"], (None, None))
        leakage, estimate = (best, False) if best is not None else (baseline, True)
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
        point["baseline"] = baseline
        points.append(point)
    front = set(pareto_front([(p["cost"], p["leakage"]) for p in points]))
    for i, p in enumerate(points):
        p["on_front"] = i in front
    chance = 1.0 / current_app.config["NB_CLASSES"]
    return tradeoff_svg(points, title, _AXIS_LABELS[axis], chance=chance), points


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


def _ranked(number: int, mode: str, public: bool) -> tuple[bool, list[dict], dict, tuple[str, str]]:
    """Whether the round is generated, its rows in the mode's order, the accuracies the plot shows by team (best
    attacker's, baseline's), and (subset, label) of the attack scores counted (see _counted_subset).

    In the tradeoff mode a row holds the tradeoff columns (rank and score of that mode) and, for the plot, the
    exports and the dashboard, the original columns (utility score, attack performance, privacy leakage).
    With `public` (the round is open) attacks count with their public-subset scores.
    """
    generated = _generated(number)
    best: dict[int, float] = {}
    if generated:
        matches, latest = _round_matches(number), _latest_rows(number)
        attacks, counted = _latest_attacks(number, public, latest), _counted_subset(latest, public)
        original = rank_round(_round_teams(number, matches, attacks))
        defence_of = {m[3]: m[6] for m in matches}
        for match_id, _, _, defender_id, *_ in matches:
            accuracy = attacks[match_id].accuracy if match_id in attacks else None
            if accuracy is not None:
                best[defender_id] = max(accuracy, best.get(defender_id, 0.0))
        tradeoff = (lambda: _tradeoff_teams(matches, attacks)) if mode == "tradeoff" else None
    else:
        defences = latest_defences()
        counted = (scores.PUBLIC if public else scores.PRIVATE, None)
        original = rank_round(_preview_teams(defences))
        defence_of = {tid: d.id for tid, d in defences.items()}
        tradeoff = (lambda: _preview_tradeoff_teams(defences)) if mode == "tradeoff" else None
    baselines = _baselines(defence_of.values())
    baseline_of = {tid: baselines[did] for tid, did in defence_of.items() if did in baselines}
    rows = [r.to_dict() for r in original]
    if tradeoff is not None:
        by_team = {r["team_id"]: r for r in rows}
        ranked = rank_tradeoff_round(tradeoff(), current_app.config["NB_CLASSES"])
        rows = [{**by_team[r.team_id], **r.to_dict()} for r in ranked]
    for row in rows:
        baseline = baseline_of.get(row["team_id"])
        row["baseline_roc_auc"] = baseline.roc_auc if baseline else None
        row["baseline_accuracy"] = baseline.accuracy if baseline else None
    accuracies = {
        tid: (best.get(tid), baseline_of[tid].accuracy if tid in baseline_of else None)
        for tid in set(best) | set(baseline_of)
    }
    return generated, rows, accuracies, counted


def previous_formula_diff(number: int) -> list[dict]:
    """What the tradeoff formula's change moved on a round's board: per team, rank and round score under the
    previous formula (advantage = 2 × (ROC-AUC − 0.5)) and under the current one (accuracy advantage, top-5
    tie-break), on the subset the round is scored on. Rows in the current board's order."""
    if not _generated(number):
        return []
    public = _subset(number) == scores.PUBLIC
    matches = _round_matches(number)
    attacks = _latest_attacks(number, public)
    # 2 × (ROC-AUC − 0.5) is the accuracy advantage of a two-class problem, (x − 1/2) / (1 − 1/2).
    before = {r.team_id: r for r in rank_tradeoff_round(_tradeoff_teams(matches, attacks, "roc_auc"), 2)}
    now = rank_tradeoff_round(_tradeoff_teams(matches, attacks), current_app.config["NB_CLASSES"])
    return [
        {
            "team_name": r.team_name,
            "rank_before": before[r.team_id].rank,
            "score_before": before[r.team_id].score,
            "leakage_before": before[r.team_id].leakage,
            "rank": r.rank,
            "score": r.score,
            "leakage": r.leakage,
        }
        for r in now
    ]


def _round_data(number: int, mode: str, subset: str, axis: str = "utility") -> dict:
    public = subset == scores.PUBLIC
    generated, rows, accuracies, (subset, note) = _ranked(number, mode, public)
    # The plot says which captures the attackers' leakage counts: the public subset, or the private one.
    on = f", attacks scored {scores.on_label(subset, note)}" if generated and note else ""
    if axis == "overhead":
        title = f"Round {number}: bandwidth overhead against privacy leakage{on}"
        svg, points = _plot(rows, title, accuracies, axis, _pinned_overheads(number))
    else:
        svg, points = _plot(rows, f"Round {number}: utility cost against privacy leakage{on}", accuracies)
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
        per_round[n] = [_Scored(r["team_id"], r["team_name"], r["score"], r.get("score_pm")) for r in ranked]
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

    def __init__(self, team_id: int, team_name: str, score: float | None, score_pm: float | None) -> None:
        self.team_id, self.team_name, self.score, self.score_pm = team_id, team_name, score, score_pm


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
