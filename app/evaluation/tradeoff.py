"""The `tradeoff` scoring mode: a round score that rewards a defence's privacy as well as a team's attacks.

Formula (quotable), with C the number of cells (web pages) and accuracies on the subset the round is scored on:

    advantage      = (accuracy − 1/C) / (1 − 1/C), clipped to [0, 1]  0 at chance, 1 for a perfect attack
    attack score   = mean over the team's matches of its advantage    a match without a scored attack counts 0
    leakage        = highest advantage any attacker reached against the team's defence this round;
                     the platform's baseline attack's advantage until an attacker has scored
    cost factor    = 1 / (1 + bandwidth overhead + time overhead)      overheads as fractions (0.48 = +48 %),
                                                                      each clipped at 0
    defence score  = (1 − leakage) × cost factor                      in [0, 1]
    round score    = defence score + attack score                     in [0, 2]
    tie-break      = the same round score computed from top-5 accuracies (chance 5/C): equal round scores are
                     ranked by it

Rationale: the original score, utility × attack performance, rewards not defending at all (no cost, full
utility) and barely separates attacks (10 × ROC-AUC runs from 9.60 to 9.92 for accuracies from 57 % to 86 %).
Here a defence earns points only for the privacy it buys, discounted by what it costs: a defence that leaks
nothing and costs nothing scores 1; one that costs as much again as the traffic itself (+100 %) keeps half of
its privacy; an undefended upload, which the baseline attacks almost perfectly, scores close to 0.

Why accuracy and not ROC-AUC: macro one-vs-rest ROC-AUC over 100 cells is compressed where defences live. A
dummy-packet defence that brings an attack down to 12 % accuracy still reads ROC-AUC 0.81 (an AUC advantage of
0.62, "62 % leaky"); a shaping that leaves 2.5 % accuracy (chance is 1 %) reads 0.58. The website-fingerprinting
literature reports leakage as attack accuracy; the advantage rescales it so that guessing is worth nothing and
a perfect attack 1, so attacking well and defending well weigh the same (each at most 1). Leakage takes the
*best* attacker because a defence is only as private as the strongest attack against it.

Worked example (C = 100 cells, chance 1 %): team A's defence costs +48 % bandwidth and +10 % time, so its cost
factor is 1 / (1 + 0.48 + 0.10) = 0.633. Its two attackers reached 34.0 % and 21.4 % accuracy (advantages
(0.34 − 0.01) / 0.99 = 0.333 and 0.206), so its leakage is 0.333 and its defence score (1 − 0.333) × 0.633 =
0.422. A attacked two teams with 90.1 % and 80.2 % accuracy (advantages 0.900 and 0.800): attack score 0.850.
Round score: 0.422 + 0.850 = 1.272. Had A uploaded undefended traffic (no overhead, baseline accuracy 89.2 %,
advantage 0.891), its defence score would be (1 − 0.891) × 1 = 0.109 and its round score 0.959.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

TOP_K = 5  # the tie-break's top-k accuracy


@dataclass(frozen=True)
class TradeoffScore:
    """One team's round in the tradeoff mode; None where an input is still missing."""

    attack_score: float | None  # None: the team has no match as attacker
    leakage: float | None  # None: neither an attacker nor the baseline has scored its defence yet
    cost_factor: float | None  # None: no defence, or its overheads are not measured
    defence_score: float | None
    score: float | None  # None exactly when defence_score is None: the team is ranked after the scored ones
    tie_break: float | None = None  # the round score on top-5 accuracies; None where one is unknown

    def to_dict(self) -> dict:
        """Return the scores as a JSON-serialisable dict."""
        return asdict(self)


def _check_accuracy(accuracy: float) -> float:
    accuracy = float(accuracy)
    if not 0.0 <= accuracy <= 1.0:  # also refuses NaN
        raise ValueError(f"an accuracy lies in [0, 1], got {accuracy}")
    return accuracy


def chance(nb_classes: int, k: int = 1) -> float:
    """Return the accuracy of guessing among nb_classes cells: k / C (the top-k accuracy of a random ranking).

    Raises:
        ValueError: fewer than two cells.
    """
    if nb_classes < 2:
        raise ValueError(f"an attack needs at least 2 cells to tell apart, got {nb_classes}")
    return min(k, nb_classes) / nb_classes


def advantage(accuracy: float, nb_classes: int, k: int = 1) -> float:
    """Return (accuracy − chance) / (1 − chance) clipped to [0, 1]: 0 at chance (or worse), 1 when perfect.

    With k = 5 the accuracy is a top-5 accuracy and chance is 5 / C.

    Raises:
        ValueError: accuracy is not a number in [0, 1], or nb_classes < 2.
    """
    accuracy, base = _check_accuracy(accuracy), chance(nb_classes, k)
    if base >= 1.0:
        return 0.0  # k covers every cell: a top-k guess cannot be wrong, so it tells nothing
    return min(1.0, max(0.0, (accuracy - base) / (1.0 - base)))


def attack_score(match_accuracies: Sequence[float | None], nb_classes: int, k: int = 1) -> float | None:
    """Return the mean advantage over a team's matches as attacker; None when it has no match.

    Args:
        match_accuracies: one entry per match the team attacks this round: the accuracy of its scored attack, or
            None when it has not (yet) uploaded one, which counts as chance (advantage 0).
        nb_classes: the number of cells C.
        k: 1 for accuracy, 5 for the top-5 tie-break.
    """
    if not match_accuracies:
        return None
    return math.fsum(0.0 if a is None else advantage(a, nb_classes, k) for a in match_accuracies) / len(
        match_accuracies
    )


def leakage(
    attacker_accuracies: Sequence[float], baseline_accuracy: float | None, nb_classes: int, k: int = 1
) -> float | None:
    """Return how much a defence leaks: the best attacker's advantage, else the baseline's, else None.

    Args:
        attacker_accuracies: accuracies that students' attacks reached against the defence this round.
        baseline_accuracy: accuracy of the platform's baseline attack on the defence, None while not measured.
        nb_classes: the number of cells C.
        k: 1 for accuracy, 5 for the top-5 tie-break.

    The baseline stands in only until an attacker has scored, as the scoring mode specifies: from then on the
    attackers' best advantage is the leakage, even when it is lower than the baseline's.
    """
    if attacker_accuracies:
        return max(advantage(a, nb_classes, k) for a in attacker_accuracies)
    if baseline_accuracy is not None:
        return advantage(baseline_accuracy, nb_classes, k)
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


def _round_score(
    match: Sequence[float | None],
    attackers: Sequence[float],
    baseline: float | None,
    factor: float | None,
    has_defence: bool,
    nb_classes: int,
    k: int,
) -> tuple[float | None, float | None, float | None, float | None]:
    """(attack score, leakage, defence score, round score) from accuracies (k = 1) or top-5 accuracies (k = 5)."""
    attack = attack_score(match, nb_classes, k)
    leaked = leakage(attackers, baseline, nb_classes, k) if has_defence else None
    defence = None if leaked is None or factor is None else (1.0 - leaked) * factor
    score = None if defence is None else defence + (attack or 0.0)
    return attack, leaked, defence, score


def _top5_known(match, attackers, baseline, match_top5, attacker_top5, baseline_top5) -> bool:
    """Whether every accuracy the round score uses has its top-5 accuracy beside it (attacks scored before top-5
    was stored have none): the tie-break is computed only then, never from a mix."""
    if match_top5 is None or attacker_top5 is None:
        return False
    if len(match_top5) != len(match) or len(attacker_top5) != len(attackers) or None in attacker_top5:
        return False
    if any((a is None) != (t is None) for a, t in zip(match, match_top5, strict=True)):
        return False
    # the baseline counts only until an attacker has scored
    return bool(attackers) or baseline is None or baseline_top5 is not None


def score_tradeoff(
    *,
    match_accuracies: Sequence[float | None],
    attacker_accuracies: Sequence[float],
    baseline_accuracy: float | None,
    bandwidth_overhead: float | None,
    time_overhead: float | None,
    nb_classes: int,
    has_defence: bool = True,
    match_top5: Sequence[float | None] | None = None,
    attacker_top5: Sequence[float] | None = None,
    baseline_top5: float | None = None,
) -> TradeoffScore:
    """Score one team's round in the tradeoff mode (see the module docstring for the formula).

    Args:
        match_accuracies: accuracy of the team's attack in each match it attacks (None: no scored attack yet).
        attacker_accuracies: accuracies its attackers reached against its defence this round.
        baseline_accuracy: the baseline attack's accuracy on its defence (None: not measured yet).
        bandwidth_overhead, time_overhead: its defence's total bandwidth and time overheads against the
            reference, as fractions (0.48 for +48 %); None when not measured.
        nb_classes: the number of cells C (chance is 1 / C).
        has_defence: False for a team without a defence this round.
        match_top5, attacker_top5, baseline_top5: the same attacks' top-5 accuracies, for the tie-break (same
            order and length as the accuracies; None when unknown, which leaves the tie-break None).

    Returns:
        A TradeoffScore. The round score is defence score + attack score (a team without matches as attacker
        adds 0); it is None, like the defence score, when the team has no defence or its leakage or overheads
        are not known yet, so that it is ranked after the scored teams.
    """
    factor = None
    if has_defence and bandwidth_overhead is not None and time_overhead is not None:
        factor = cost_factor(bandwidth_overhead, time_overhead)
    attack, leaked, defence, score = _round_score(
        match_accuracies, attacker_accuracies, baseline_accuracy, factor, has_defence, nb_classes, 1
    )
    tie_break = None
    known = _top5_known(
        match_accuracies, attacker_accuracies, baseline_accuracy, match_top5, attacker_top5, baseline_top5
    )
    if score is not None and known:
        tie_break = _round_score(match_top5, attacker_top5, baseline_top5, factor, has_defence, nb_classes, TOP_K)[3]
    return TradeoffScore(
        attack_score=attack,
        leakage=leaked,
        cost_factor=factor,
        defence_score=defence,
        score=score,
        tie_break=tie_break,
    )


__all__ = [
    "TOP_K",
    "TradeoffScore",
    "advantage",
    "attack_score",
    "chance",
    "cost_factor",
    "defence_score",
    "leakage",
    "score_tradeoff",
]
