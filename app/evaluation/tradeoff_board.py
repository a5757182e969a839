"""A round's leaderboard in the `tradeoff` scoring mode (formula in tradeoff.py), ranked like the original."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from .confidence import combined_half_width
from .leaderboard import ATTACKS_REMAINING, NO_DEFENCE, _assign_ranks, _rank_key
from .tradeoff import advantage, score_tradeoff

NO_OVERHEADS = "Overheads of its defence not measured"
NO_LEAKAGE = "Privacy not estimated yet (baseline attack pending)"


@dataclass
class TradeoffTeam:
    """What one team did in one round, as the tradeoff mode needs it."""

    team_id: int
    team_name: str
    has_defence: bool
    match_aucs: list[float | None]  # per match it attacks: the ROC-AUC of its latest attack, None when none yet
    attacker_aucs: list[float]  # ROC-AUCs its attackers reached against its defence
    baseline_auc: float | None = None  # the baseline attack on its defence, None until measured
    bandwidth_overhead: float | None = None  # total bandwidth overhead of its defence, fraction (0.48 = +48 %)
    time_overhead: float | None = None
    # Half-widths of the 95 % intervals of the ROC-AUCs above (same order), None where unknown.
    match_half_widths: list[float | None] = field(default_factory=list)
    attacker_half_widths: list[float | None] = field(default_factory=list)
    baseline_half_width: float | None = None


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
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the row as a JSON-serialisable dict."""
        return asdict(self)


def _leakage_pm(team: TradeoffTeam) -> float | None:
    """Half-width of the leakage's interval: twice that of the ROC-AUC it comes from (advantage = 2 AUC − 1)."""
    if team.attacker_aucs:
        best = max(range(len(team.attacker_aucs)), key=lambda i: advantage(team.attacker_aucs[i]))
        widths = team.attacker_half_widths
        width = widths[best] if best < len(widths) else None
    else:
        width = team.baseline_half_width
    return None if width is None else 2 * width


def rank_tradeoff_round(teams: Sequence[TradeoffTeam]) -> list[TradeoffRow]:
    """Rank the teams of one round by round score = defence score + attack score (tradeoff.score_tradeoff).

    Args:
        teams: one TradeoffTeam per team of the round.

    Returns:
        One TradeoffRow per team, in display order. The round score is None (ranked last) for a team without
        a defence, or whose defence has neither a scored attack nor a baseline estimate, or no measured
        overheads; messages say which. attack_score_pm is the half-width of an approximate 95 % interval of
        the attack score (the matches' intervals combined as independent: sqrt(sum of squares) / matches);
        leakage_pm the one of the leakage.

    Ranking: as rank_round: score descending, None last, ties to 9 decimals share a rank (1, 2, 2, 4),
    then team name, then team id.
    """
    rows = []
    for team in teams:
        result = score_tradeoff(
            match_aucs=team.match_aucs,
            attacker_aucs=team.attacker_aucs,
            baseline_auc=team.baseline_auc,
            bandwidth_overhead=team.bandwidth_overhead,
            time_overhead=team.time_overhead,
            has_defence=team.has_defence,
        )
        done = sum(auc is not None for auc in team.match_aucs)
        expected = len(team.match_aucs)
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
            source = "attackers" if team.attacker_aucs else "baseline"
        attack_pm = None
        if expected:
            widths = [
                0.0 if auc is None else w
                for auc, w in zip(team.match_aucs, _pad(team.match_half_widths, expected), strict=True)
            ]
            attack_pm = combined_half_width(widths)
            attack_pm = None if attack_pm is None else 2 * attack_pm
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
                leakage_pm=_leakage_pm(team) if result.leakage is not None else None,
                messages=messages,
            )
        )
    rows.sort(key=lambda row: _rank_key(row.score, row.team_name, row.team_id))
    _assign_ranks(rows)
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
