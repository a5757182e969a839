"""A round's leaderboard in the `tradeoff` scoring mode (formula in tradeoff.py), ranked like the original."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from .confidence import combined_half_width
from .leaderboard import ATTACKS_REMAINING, NO_DEFENCE, _assign_ranks, _rank_key, mark_ties
from .tradeoff import advantage, chance, score_tradeoff

NO_OVERHEADS = "Overheads of its defence not measured"
NO_LEAKAGE = "Privacy not estimated yet (baseline attack pending)"


@dataclass
class TradeoffTeam:
    """What one team did in one round, as the tradeoff mode needs it."""

    team_id: int
    team_name: str
    has_defence: bool
    match_accuracies: list[float | None]  # per match it attacks: the accuracy of its latest attack, None when none
    attacker_accuracies: list[float]  # accuracies its attackers reached against its defence
    baseline_accuracy: float | None = None  # the baseline attack on its defence, None until measured
    bandwidth_overhead: float | None = None  # total bandwidth overhead of its defence, fraction (0.48 = +48 %)
    time_overhead: float | None = None
    # Half-widths of the 95 % intervals of the accuracies above (same order), None where unknown.
    match_half_widths: list[float | None] = field(default_factory=list)
    attacker_half_widths: list[float | None] = field(default_factory=list)
    baseline_half_width: float | None = None
    # The same attacks' top-5 accuracies (same order), for the tie-break; None where unknown.
    match_top5: list[float | None] = field(default_factory=list)
    attacker_top5: list[float | None] = field(default_factory=list)
    baseline_top5: float | None = None


@dataclass
class TradeoffRow:
    """One team's line in a round's tradeoff leaderboard."""

    rank: int
    team_id: int
    team_name: str
    attack_score: float | None
    defence_score: float | None
    score: float | None
    leakage: float | None
    leakage_source: str | None  # "attackers", "baseline" or None
    cost_factor: float | None
    attacks_done: int
    attacks_expected: int
    attack_score_pm: float | None = None  # half-width of an approximate 95 % interval
    leakage_pm: float | None = None
    score_pm: float | None = None
    tie_break: float | None = None  # the round score on top-5 accuracies: ranks equal round scores
    tied_with_above: bool = False  # its score's interval overlaps the one of the team ranked just above
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the row as a JSON-serialisable dict."""
        return asdict(self)


def _leakage_pm(team: TradeoffTeam, nb_classes: int) -> float | None:
    """Half-width of the leakage's interval: that of the accuracy it comes from, over (1 − chance)."""
    if team.attacker_accuracies:
        accuracies = team.attacker_accuracies
        best = max(range(len(accuracies)), key=lambda i: advantage(accuracies[i], nb_classes))
        widths = team.attacker_half_widths
        width = widths[best] if best < len(widths) else None
    else:
        width = team.baseline_half_width
    return None if width is None else width / (1.0 - chance(nb_classes))


def _score_pm(defence_pm: float | None, attack_pm: float | None, expected: int) -> float | None:
    """Half-width of the round score's interval: defence and attack parts combined as independent."""
    if defence_pm is None or (expected and attack_pm is None):
        return None
    return math.hypot(defence_pm, attack_pm or 0.0)


def rank_tradeoff_round(teams: Sequence[TradeoffTeam], nb_classes: int) -> list[TradeoffRow]:
    """Rank the teams of one round by round score = defence score + attack score (tradeoff.score_tradeoff).

    Args:
        teams: one TradeoffTeam per team of the round.
        nb_classes: the number of cells C (chance accuracy is 1 / C).

    Returns:
        One TradeoffRow per team, in display order. The round score is None (ranked last) for a team without
        a defence, or whose defence has neither a scored attack nor a baseline estimate, or no measured
        overheads; messages say which. attack_score_pm is the half-width of an approximate 95 % interval of
        the attack score (the matches' intervals combined as independent: sqrt(sum of squares) / matches);
        leakage_pm the one of the leakage, score_pm the one of the round score; tied_with_above marks a team
        whose score's interval overlaps the one of the team ranked just above (leaderboard.mark_ties).

    Ranking: score descending, None last; equal scores (to 9 decimals) are ordered by the tie-break (the round
    score on top-5 accuracies) and share a rank (1, 2, 2, 4) only when that is equal too; then team name, id.
    """
    rows = []
    for team in teams:
        result = score_tradeoff(
            match_accuracies=team.match_accuracies,
            attacker_accuracies=team.attacker_accuracies,
            baseline_accuracy=team.baseline_accuracy,
            bandwidth_overhead=team.bandwidth_overhead,
            time_overhead=team.time_overhead,
            nb_classes=nb_classes,
            has_defence=team.has_defence,
            match_top5=team.match_top5,
            attacker_top5=team.attacker_top5,
            baseline_top5=team.baseline_top5,
        )
        done = sum(accuracy is not None for accuracy in team.match_accuracies)
        expected = len(team.match_accuracies)
        messages = []
        if not team.has_defence:
            messages.append(NO_DEFENCE)
        else:
            if result.leakage is None:
                messages.append(NO_LEAKAGE)
            if result.cost_factor is None:
                messages.append(NO_OVERHEADS)
        if done < expected:
            messages.append(f"{ATTACKS_REMAINING} ({done} of {expected} attacks done)")
        source = None
        if result.leakage is not None:
            source = "attackers" if team.attacker_accuracies else "baseline"
        attack_pm = None
        if expected:
            widths = [
                0.0 if accuracy is None else w
                for accuracy, w in zip(team.match_accuracies, _pad(team.match_half_widths, expected), strict=True)
            ]
            attack_pm = combined_half_width(widths)
            attack_pm = None if attack_pm is None else attack_pm / (1.0 - chance(nb_classes))
        leakage_pm = _leakage_pm(team, nb_classes) if result.leakage is not None else None
        defence_pm = None
        if leakage_pm is not None and result.cost_factor is not None:
            defence_pm = leakage_pm * result.cost_factor
        rows.append(
            TradeoffRow(
                rank=0,
                team_id=team.team_id,
                team_name=team.team_name,
                attack_score=result.attack_score,
                defence_score=result.defence_score,
                score=result.score,
                leakage=result.leakage,
                leakage_source=source,
                cost_factor=result.cost_factor,
                attacks_done=done,
                attacks_expected=expected,
                attack_score_pm=attack_pm,
                leakage_pm=leakage_pm,
                score_pm=_score_pm(defence_pm, attack_pm, expected) if result.score is not None else None,
                tie_break=result.tie_break,
                messages=messages,
            )
        )
    rows.sort(key=lambda row: _rank_key(row.score, row.team_name, row.team_id, row.tie_break))
    _assign_ranks(rows)
    mark_ties(rows)
    return rows


def _pad(values: list[float | None], length: int) -> list[float | None]:
    return list(values[:length]) + [None] * (length - len(values))


def percent_to_fraction(value: float | None) -> float | None:
    """An overhead in percent (as Defence.overheads stores it) as a fraction; None stays None."""
    if value is None:
        return None
    value = float(value)
    return value / 100.0 if math.isfinite(value) else None


__all__ = ["TradeoffRow", "TradeoffTeam", "percent_to_fraction", "rank_tradeoff_round"]
