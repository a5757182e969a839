"""The `tradeoff` scoring mode: a round score that rewards a defence's privacy as well as a team's attacks.

Formula (quotable):

    advantage      = 2 × (ROC-AUC − 0.5), clipped to [0, 1]         0 at chance, 1 for a perfect attack
    attack score   = mean over the team's matches of its advantage   a match without a scored attack counts 0
    leakage        = highest advantage any attacker reached against the team's defence this round;
                     the platform's baseline attack's advantage until an attacker has scored
    cost factor    = 1 / (1 + bandwidth overhead + time overhead)     overheads as fractions (0.48 = +48 %),
                                                                     each clipped at 0
    defence score  = (1 − leakage) × cost factor                     in [0, 1]
    round score    = defence score + attack score                    in [0, 2]

Rationale: the original score, utility × attack performance, rewards not defending at all (no cost, full
utility) and barely separates attacks (10 × ROC-AUC runs from 9.60 to 9.92 for accuracies from 57 % to 86 %).
Here a defence earns points only for the privacy it buys, discounted by what it costs: a defence that leaks
nothing and costs nothing scores 1; one that costs as much again as the traffic itself (+100 %) keeps half of
its privacy; an undefended upload, which the baseline attacks almost perfectly, scores close to 0. The
advantage rescales ROC-AUC so that chance is worth nothing and a perfect attack 1, so an attack's points grow
linearly with what it learns, and attacking well and defending well weigh the same (each at most 1). Leakage
takes the *best* attacker because a defence is only as private as the strongest attack against it.

Worked example: team A's defence costs +48 % bandwidth and +10 % time, so its cost factor is
1 / (1 + 0.48 + 0.10) = 0.633. Its two attackers reached ROC-AUC 0.83 and 0.79 (advantages 0.66 and 0.58),
so its leakage is 0.66 and its defence score (1 − 0.66) × 0.633 = 0.215. A attacked two teams with ROC-AUC
0.99 and 0.95 (advantages 0.98 and 0.90): attack score 0.94. Round score: 0.215 + 0.94 = 1.155. Had A
uploaded undefended traffic (no overhead, baseline ROC-AUC 0.992, advantage 0.984), its defence score would
be (1 − 0.984) × 1 = 0.016 and its round score 0.956.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TradeoffScore:
    """One team's round in the tradeoff mode; None where an input is still missing."""

    attack_score: float | None  # None: the team has no match as attacker
    leakage: float | None  # None: neither an attacker nor the baseline has scored its defence yet
    cost_factor: float | None  # None: no defence, or its overheads are not measured
    defence_score: float | None
    score: float | None  # None exactly when defence_score is None: the team is ranked after the scored ones

    def to_dict(self) -> dict:
        """Return the scores as a JSON-serialisable dict."""
        return asdict(self)


def _check_auc(roc_auc: float) -> float:
    roc_auc = float(roc_auc)
    if not 0.0 <= roc_auc <= 1.0:  # also refuses NaN
        raise ValueError(f"a ROC-AUC lies in [0, 1], got {roc_auc}")
    return roc_auc


def advantage(roc_auc: float) -> float:
    """Return 2 × (ROC-AUC − 0.5) clipped to [0, 1]: 0 at chance (or worse), 1 for a perfect attack.

    Raises:
        ValueError: roc_auc is not a number in [0, 1].
    """
    return min(1.0, max(0.0, 2.0 * (_check_auc(roc_auc) - 0.5)))


def attack_score(match_aucs: Sequence[float | None]) -> float | None:
    """Return the mean advantage over a team's matches as attacker; None when it has no match.

    Args:
        match_aucs: one entry per match the team attacks this round: the ROC-AUC of its scored attack, or
            None when it has not (yet) uploaded one, which counts as chance (advantage 0).
    """
    if not match_aucs:
        return None
    return math.fsum(0.0 if auc is None else advantage(auc) for auc in match_aucs) / len(match_aucs)


def leakage(attacker_aucs: Sequence[float], baseline_auc: float | None) -> float | None:
    """Return how much a defence leaks: the best attacker's advantage, else the baseline's, else None.

    Args:
        attacker_aucs: ROC-AUCs that students' attacks reached against the defence this round.
        baseline_auc: ROC-AUC of the platform's baseline attack on the defence, None while not measured.

    The baseline stands in only until an attacker has scored, as the scoring mode specifies: from then on the
    attackers' best advantage is the leakage, even when it is lower than the baseline's.
    """
    if attacker_aucs:
        return max(advantage(auc) for auc in attacker_aucs)
    if baseline_auc is not None:
        return advantage(baseline_auc)
    return None


def cost_factor(bandwidth_overhead: float, time_overhead: float) -> float:
    """Return 1 / (1 + bandwidth overhead + time overhead), overheads as fractions, each clipped at 0.

    1 at no overhead, 1/2 when the overheads add up to +100 %, falling smoothly towards 0. A defence cheaper
    than the reference earns no bonus (clipping), so the factor never exceeds 1.

    Raises:
        ValueError: an overhead is not a finite number.
    """
    overheads = [float(bandwidth_overhead), float(time_overhead)]
    if not all(math.isfinite(value) for value in overheads):
        raise ValueError(f"overheads must be finite fractions, got {overheads}")
    return 1.0 / (1.0 + sum(max(0.0, value) for value in overheads))


def defence_score(leakage: float, bandwidth_overhead: float, time_overhead: float) -> float:
    """Return (1 − leakage) × cost_factor(bandwidth_overhead, time_overhead), in [0, 1].

    Raises:
        ValueError: leakage is not in [0, 1], or an overhead is not finite.
    """
    leakage = float(leakage)
    if not 0.0 <= leakage <= 1.0:
        raise ValueError(f"leakage lies in [0, 1], got {leakage}")
    return (1.0 - leakage) * cost_factor(bandwidth_overhead, time_overhead)


def score_tradeoff(
    *,
    match_aucs: Sequence[float | None],
    attacker_aucs: Sequence[float],
    baseline_auc: float | None,
    bandwidth_overhead: float | None,
    time_overhead: float | None,
    has_defence: bool = True,
) -> TradeoffScore:
    """Score one team's round in the tradeoff mode (see the module docstring for the formula).

    Args:
        match_aucs: ROC-AUC of the team's attack in each match it attacks (None: no scored attack yet).
        attacker_aucs: ROC-AUCs its attackers reached against its defence this round.
        baseline_auc: the baseline attack's ROC-AUC on its defence (None: not measured yet).
        bandwidth_overhead, time_overhead: its defence's total bandwidth and time overheads against the
            reference, as fractions (0.48 for +48 %); None when not measured.
        has_defence: False for a team without a defence this round.

    Returns:
        A TradeoffScore. The round score is defence score + attack score (a team without matches as attacker
        adds 0); it is None, like the defence score, when the team has no defence or its leakage or overheads
        are not known yet, so that it is ranked after the scored teams.
    """
    attack = attack_score(match_aucs)
    leaked = leakage(attacker_aucs, baseline_auc) if has_defence else None
    factor = None
    if has_defence and bandwidth_overhead is not None and time_overhead is not None:
        factor = cost_factor(bandwidth_overhead, time_overhead)
    defence = None if leaked is None or factor is None else (1.0 - leaked) * factor
    score = None if defence is None else defence + (attack or 0.0)
    return TradeoffScore(attack_score=attack, leakage=leaked, cost_factor=factor, defence_score=defence, score=score)


__all__ = ["TradeoffScore", "advantage", "attack_score", "cost_factor", "defence_score", "leakage", "score_tradeoff"]
