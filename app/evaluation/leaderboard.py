"""Leaderboard: ranking of a round, aggregation over rounds, and the utility/privacy trade-off."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from xml.sax.saxutils import escape

NO_DEFENCE = "No defence uploaded yet"
ATTACKS_REMAINING = "Some attacks remain to do"
AGGREGATIONS = ("sum", "mean", "best")
# Scores equal to this many decimals tie: products and means computed in another order can differ
# in the last bits, which no one should be ranked on.
_TIE_DECIMALS = 9


@dataclass
class TeamRound:
    """What one team did in one round, as the leaderboard needs it."""

    team_id: int
    team_name: str
    utility_score: float | None
    attack_aucs: list[float]  # latest ROC-AUC of each match it attacked that has a scored attack
    nb_matches_as_attacker: int
    leakage_aucs: list[float]  # ROC-AUCs its attackers reached against its defence


@dataclass
class LeaderboardRow:
    """One team's line in a round's leaderboard."""

    rank: int
    team_id: int
    team_name: str
    utility_score: float | None
    attack_performance: float | None
    attacks_done: int
    attacks_expected: int
    score: float | None
    privacy_leakage: float | None
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the row as a JSON-serialisable dict."""
        return asdict(self)


@dataclass
class OverallRow:
    """One team's line in the leaderboard across rounds."""

    rank: int
    team_id: int
    team_name: str
    score: float | None
    rounds_played: int
    rounds_scored: int
    round_scores: dict[int, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the row as a JSON-serialisable dict; round numbers become string keys."""
        data = asdict(self)
        data["round_scores"] = {str(number): score for number, score in self.round_scores.items()}
        return data


def _rank_key(score: float | None, team_name: str, team_id: int) -> tuple:
    if score is None:
        return (1, 0.0, team_name, team_id)
    return (0, -round(score, _TIE_DECIMALS), team_name, team_id)


def _assign_ranks(rows: list) -> None:
    """Standard competition ranks (1, 2, 2, 4) on rows already in display order."""
    previous = None
    for position, row in enumerate(rows, start=1):
        key = _rank_key(row.score, "", 0)[:2]
        if key != previous:
            rank, previous = position, key
        row.rank = rank


def rank_round(teams: Sequence[TeamRound]) -> list[LeaderboardRow]:
    """Rank the teams of one round.

    Args:
        teams: one TeamRound per team of the round.

    Returns:
        One LeaderboardRow per team, in display order, with:
        - attack_performance: mean of 10 × ROC-AUC over the matches the team attacked, only once
          all of them have a scored attack (None before, and None for a team without matches);
        - score: utility_score × attack_performance, where a missing attack performance counts
          as 1.0 (as the original platform did, so a team is ranked on its defence until its
          attacks are in); None when the team has no defence;
        - privacy_leakage: mean ROC-AUC of its attackers against its defence, None without any;
        - messages: "No defence uploaded yet" without a defence, "Some attacks remain to do
          (x of k attacks done)" while attacks are missing.

    Ranking: score descending; teams without a score come last and share the rank after the
    scored teams. Scores equal to 9 decimals tie and share a rank, standard competition style
    (1, 2, 2, 4). Display order within a tie: team name, then team id.
    """
    rows = []
    for team in teams:
        done = len(team.attack_aucs)
        expected = team.nb_matches_as_attacker
        complete = expected > 0 and done >= expected
        performance = fmean(10.0 * auc for auc in team.attack_aucs) if complete else None
        messages = []
        if team.utility_score is None:
            messages.append(NO_DEFENCE)
            score = None
        else:
            score = team.utility_score * (performance if performance is not None else 1.0)
        if done < expected:
            messages.append(f"{ATTACKS_REMAINING} ({done} of {expected} attacks done)")
        rows.append(
            LeaderboardRow(
                rank=0,
                team_id=team.team_id,
                team_name=team.team_name,
                utility_score=team.utility_score,
                attack_performance=performance,
                attacks_done=done,
                attacks_expected=expected,
                score=score,
                privacy_leakage=fmean(team.leakage_aucs) if team.leakage_aucs else None,
                messages=messages,
            )
        )
    rows.sort(key=lambda row: _rank_key(row.score, row.team_name, row.team_id))
    _assign_ranks(rows)
    return rows


def aggregate_rounds(rounds: Mapping[int, Sequence[LeaderboardRow]], how: str = "sum") -> list[OverallRow]:
    """Rank teams across rounds.

    Args:
        rounds: round number → that round's rows (as returned by rank_round).
        how: "sum", "mean" or "best" of a team's scores over the rounds it played.

    Returns:
        One OverallRow per team appearing in any round, in display order. Rounds where a team
        has no score (no defence) are left out of its sum, mean and best, so a missing round adds
        nothing to a sum and does not drag a mean down; a team with no score in any round has
        score None. Its name is the one of the latest round it appears in. Ranked like
        rank_round: score descending, None last, ties (to 9 decimals) share a rank, then name.

    Raises:
        ValueError: `how` is not one of "sum", "mean", "best".
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"how must be one of {', '.join(AGGREGATIONS)}, got {how!r}")
    played: dict[int, OverallRow] = {}
    for number in sorted(rounds):
        for row in rounds[number]:
            overall = played.setdefault(row.team_id, OverallRow(0, row.team_id, row.team_name, None, 0, 0))
            overall.team_name = row.team_name
            overall.rounds_played += 1
            overall.round_scores[number] = row.score
    for overall in played.values():
        scores = [score for score in overall.round_scores.values() if score is not None]
        overall.rounds_scored = len(scores)
        if scores:
            overall.score = {"sum": math.fsum, "mean": fmean, "best": max}[how](scores)
    rows = sorted(played.values(), key=lambda r: _rank_key(r.score, r.team_name, r.team_id))
    _assign_ranks(rows)
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Return the indices, ascending, of the points no other point dominates, both axes minimised.

    A point dominates another when it is lower or equal on both coordinates and strictly lower
    on one; identical points do not dominate each other, so duplicates on the front are all
    kept. Points with a NaN or infinite coordinate are never on the front and dominate nothing.
    """
    finite = [(index, (x, y)) for index, (x, y) in enumerate(points) if math.isfinite(x) and math.isfinite(y)]
    front = []
    for index, (x, y) in finite:
        dominated = any(ox <= x and oy <= y and (ox < x or oy < y) for other, (ox, oy) in finite if other != index)
        if not dominated:
            front.append(index)
    return front


def utility_cost(utility_score: float) -> float:
    """Return the utility cost of a defence, lower is better: 64 / utility_score.

    The utility score is 64 / log10(median in-bytes × median out-bytes × median duration), so the
    cost is that log10 of the median product: it grows with the bandwidth and time a defence adds.

    Raises:
        ZeroDivisionError: utility_score is 0 (no defence can score it).
    """
    return 64.0 / utility_score


_WIDTH, _HEIGHT = 720, 480
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 30, 50, 70
_X_LABEL = "Utility cost (lower is better)"
_Y_LABEL = "Privacy leakage: mean ROC-AUC of attackers"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    span = high - low
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _axis_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 if high > low else max(abs(high) * 0.1, 0.05)
    return low - pad, high + pad


def _number(value: float) -> str:
    return f"{value:.3g}"


def tradeoff_svg(points: list[dict], title: str) -> str:
    """Return an accessible SVG scatter plot of the utility/privacy trade-off of the defences.

    Args:
        points: dicts with "name" (team name), "cost" (utility cost, see utility_cost), "leakage"
            (mean ROC-AUC of its attackers) and "on_front" (bool, on the Pareto front, see
            pareto_front). Points with a missing or non-finite cost or leakage are left out.
        title: the chart's title, also its accessible name.

    Returns:
        An SVG document (role="img" with <title> and <desc>): each team a labelled point, the
        Pareto front drawn as diamonds joined by a step line, both axes labelled; lower-left is
        better. Without any plottable point, an SVG saying "No data yet".
    """
    plotted = [
        point
        for point in points
        if isinstance(point.get("cost"), numbers.Real)
        and isinstance(point.get("leakage"), numbers.Real)
        and math.isfinite(point["cost"])
        and math.isfinite(point["leakage"])
    ]
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="{_WIDTH}" height="{_HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        'font-family="sans-serif" font-size="12">'
        f'<title id="chart-title">{escape(title)}</title>'
    )
    if not plotted:
        return (
            f'{head}<desc id="chart-desc">No defence has both a utility cost and a privacy '
            "leakage yet.</desc>"
            f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle" font-size="18">'
            "No data yet</text></svg>"
        )

    x_low, x_high = _axis_range([p["cost"] for p in plotted])
    y_low, y_high = _axis_range([p["leakage"] for p in plotted])
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def sx(value: float) -> float:
        return round(_LEFT + (value - x_low) / (x_high - x_low) * plot_w, 2)

    def sy(value: float) -> float:
        return round(_TOP + (y_high - value) / (y_high - y_low) * plot_h, 2)

    front = sorted((p for p in plotted if p.get("on_front")), key=lambda p: (p["cost"], p["leakage"]))
    described = "; ".join(f"{p['name']} (cost {_number(p['cost'])}, leakage {_number(p['leakage'])})" for p in front)
    desc = (
        f"Scatter plot of {len(plotted)} defences: utility cost on the horizontal axis, privacy "
        f"leakage on the vertical axis, lower is better on both. Pareto front: {described or 'none'}."
    )
    parts = [head, f'<desc id="chart-desc">{escape(desc)}</desc>']
    parts.append(f'<text x="{_WIDTH / 2}" y="28" text-anchor="middle" font-size="16">{escape(title)}</text>')
    bottom, right = _TOP + plot_h, _LEFT + plot_w
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    for tick in _ticks(x_low, x_high):
        x = sx(tick)
        parts.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 5}" stroke="#444"/>')
        parts.append(f'<text x="{x}" y="{bottom + 18}" text-anchor="middle">{_number(tick)}</text>')
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        parts.append(f'<line x1="{_LEFT - 5}" y1="{y}" x2="{_LEFT}" y2="{y}" stroke="#444"/>')
        parts.append(f'<text x="{_LEFT - 8}" y="{y + 4}" text-anchor="end">{_number(tick)}</text>')
    parts.append(f'<text x="{_LEFT + plot_w / 2}" y="{_HEIGHT - 20}" text-anchor="middle">{_X_LABEL}</text>')
    parts.append(
        f'<text transform="translate(22 {_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{_Y_LABEL}</text>'
    )
    if len(front) > 1:
        # Staircase bounding the dominated region (up and to the right of the front).
        path = [f"M{sx(front[0]['cost'])} {sy(front[0]['leakage'])}"]
        for point in front[1:]:
            path.append(f"H{sx(point['cost'])} V{sy(point['leakage'])}")
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="#c0392b" stroke-width="2" '
            'stroke-dasharray="6 3"><title>Pareto front</title></path>'
        )
    for point in plotted:
        x, y = sx(point["cost"]), sy(point["leakage"])
        name = escape(str(point["name"]))
        label = f"{name}: cost {_number(point['cost'])}, leakage {_number(point['leakage'])}"
        if point.get("on_front"):
            label += ", on the Pareto front"
            marker = f'<path d="M{x} {y - 7} L{x + 7} {y} L{x} {y + 7} L{x - 7} {y} Z" fill="#c0392b" class="front"/>'
        else:
            marker = f'<circle cx="{x}" cy="{y}" r="5" fill="#2c6fbb"/>'
        anchor, dx = ("end", -9) if x > right - 80 else ("start", 9)
        parts.append(
            f'<g><title>{label}</title>{marker}<text x="{x + dx}" y="{y - 6}" text-anchor="{anchor}">{name}</text></g>'
        )
    legend_y = _TOP + 14
    parts.append(
        f'<g font-size="11"><path d="M{right - 150} {legend_y - 5} l5 5 l-5 5 l-5 -5 Z" fill="#c0392b"/>'
        f'<text x="{right - 140}" y="{legend_y + 4}">Pareto front</text>'
        f'<circle cx="{right - 150}" cy="{legend_y + 18}" r="5" fill="#2c6fbb"/>'
        f'<text x="{right - 140}" y="{legend_y + 22}">Other defences</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)
