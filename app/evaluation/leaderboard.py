"""Leaderboard: ranking of a round, aggregation over rounds, and the utility/privacy trade-off."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean

from .confidence import combined_half_width

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
    # Half-widths of the 95 % intervals of the ROC-AUCs above (same order; None where unknown).
    attack_half_widths: list[float | None] = field(default_factory=list)
    leakage_half_widths: list[float | None] = field(default_factory=list)


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
    # Half-widths of approximate 95 % intervals of attack_performance and privacy_leakage (None: unknown).
    attack_performance_pm: float | None = None
    privacy_leakage_pm: float | None = None
    score_pm: float | None = None  # half-width of an approximate 95 % interval of the score
    tied_with_above: bool = False  # its score's interval overlaps the one of the team ranked just above

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
    score_pm: float | None = None  # half-width of an approximate 95 % interval of the score
    tied_with_above: bool = False
    round_score_pms: dict[int, float | None] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """Return the row as a JSON-serialisable dict; round numbers become string keys."""
        data = asdict(self)
        data["round_scores"] = {str(number): score for number, score in self.round_scores.items()}
        del data["round_score_pms"]
        return data


def _rank_key(score: float | None, team_name: str, team_id: int, tie_break: float | None = None) -> tuple:
    if score is None:
        return (1, 0.0, 0.0, team_name, team_id)
    second = 0.0 if tie_break is None else -round(tie_break, _TIE_DECIMALS)
    return (0, -round(score, _TIE_DECIMALS), second, team_name, team_id)


def _assign_ranks(rows: list) -> None:
    """Standard competition ranks (1, 2, 2, 4) on rows already in display order (rows with a `tie_break` share
    a rank only when it is equal too)."""
    previous = None
    for position, row in enumerate(rows, start=1):
        key = _rank_key(row.score, "", 0, getattr(row, "tie_break", None))[:3]
        if key != previous:
            rank, previous = position, key
        row.rank = rank


TIE_EXPLANATION = (
    "Statistically tied with the team above: the 95 % intervals of the two scores overlap, so the test set "
    "cannot tell which is better. Ranks still follow the scores."
)


def mark_ties(rows: Sequence) -> None:
    """Set tied_with_above on rows in display order: True when the row's score interval (score ± score_pm)
    overlaps the one of the row just above, or the two share a rank. An unknown half-width counts as 0; a row
    without a score is never tied."""
    above = None
    for row in rows:
        row.tied_with_above = False
        if row.score is not None and above is not None and above.score is not None:
            low_above = above.score - (above.score_pm or 0.0)
            high = row.score + (row.score_pm or 0.0)
            row.tied_with_above = row.rank == above.rank or high >= low_above - 10**-_TIE_DECIMALS
        above = row


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
          (x of k attacks done)" while attacks are missing;
        - attack_performance_pm, privacy_leakage_pm: half-widths of approximate 95 % intervals of the two
          means, from the matches' intervals combined as independent (confidence.combined_half_width);
          None when a match's interval is unknown.

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
                attack_performance_pm=_scaled(combined_half_width(team.attack_half_widths), 10.0)
                if performance is not None and len(team.attack_half_widths) == done
                else None,
                privacy_leakage_pm=combined_half_width(team.leakage_half_widths)
                if len(team.leakage_half_widths) == len(team.leakage_aucs)
                else None,
            )
        )
        row = rows[-1]
        if score is not None:
            # utility is measured once, exactly: the score's spread is the attack performance's, scaled.
            row.score_pm = 0.0 if performance is None else _scaled(row.attack_performance_pm, team.utility_score)
    rows.sort(key=lambda row: _rank_key(row.score, row.team_name, row.team_id))
    _assign_ranks(rows)
    mark_ties(rows)
    return rows


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


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
            overall.round_score_pms[number] = getattr(row, "score_pm", None)
    for overall in played.values():
        scored = {n: s for n, s in overall.round_scores.items() if s is not None}
        overall.rounds_scored = len(scored)
        if scored:
            overall.score = {"sum": math.fsum, "mean": fmean, "best": max}[how](scored.values())
            overall.score_pm = _overall_pm(how, scored, overall.round_score_pms)
    rows = sorted(played.values(), key=lambda r: _rank_key(r.score, r.team_name, r.team_id))
    _assign_ranks(rows)
    mark_ties(rows)
    return rows


def _overall_pm(how: str, scored: dict[int, float], pms: dict[int, float | None]) -> float | None:
    """Half-width of an aggregate's interval, rounds independent: sum → sqrt(sum of squares), mean → that over
    the count, best → the best round's own; None when a round's is unknown."""
    widths = [pms.get(n) for n in scored]
    if any(width is None for width in widths):
        return None
    if how == "best":
        return pms[max(scored, key=scored.get)]
    total = math.sqrt(math.fsum(width * width for width in widths))
    return total if how == "sum" else total / len(widths)


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
