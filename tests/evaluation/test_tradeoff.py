"""The tradeoff scoring mode on hand-computed cases, extremes included: leakage and attack score from accuracy."""

import math

import pytest

from app.evaluation.tradeoff import (
    advantage,
    attack_score,
    chance,
    cost_factor,
    defence_score,
    leakage,
    score_tradeoff,
)

C = 100  # cells, as in the course


def test_advantage_is_zero_at_chance_one_when_perfect_and_linear_in_accuracy():
    assert chance(C) == 0.01 and chance(C, k=5) == 0.05
    assert advantage(0.01, C) == 0.0  # guessing
    assert advantage(1.0, C) == 1.0  # perfect attack
    assert advantage(0.505, C) == pytest.approx(0.5)
    assert advantage(0.0, C) == 0.0  # worse than chance earns nothing
    assert advantage(0.05, C, k=5) == 0.0 and advantage(0.525, C, k=5) == pytest.approx(0.5)
    for bad in (1.2, -0.1, math.nan):
        with pytest.raises(ValueError, match="accuracy"):
            advantage(bad, C)
    with pytest.raises(ValueError, match="2 cells"):
        advantage(0.5, 1)


def test_a_defence_that_leaves_an_attack_near_chance_reads_as_private():
    # What ROC-AUC hid: 12.3 % accuracy (FRONT-like dummies) and 2.5 % (Tamaraw-like) are little leakage.
    assert advantage(0.123, C) == pytest.approx(0.114, abs=1e-3)
    assert advantage(0.025, C) == pytest.approx(0.015, abs=1e-3)
    # The old form called the first 62 % leaky (ROC-AUC 0.811): it equals the two-class accuracy advantage.
    assert advantage(0.811, 2) == pytest.approx(2 * (0.811 - 0.5))


def test_attack_score_is_the_mean_advantage_and_a_missing_attack_counts_as_chance():
    assert attack_score([0.901, 0.802], C) == pytest.approx((0.9 + 0.8) / 2)
    assert attack_score([1.0, None], C) == pytest.approx(0.5)
    assert attack_score([0.01, 0.01], C) == 0.0
    assert attack_score([], C) is None


def test_leakage_is_the_best_attacker_else_the_baseline():
    assert leakage([0.34, 0.214], baseline_accuracy=0.99, nb_classes=C) == pytest.approx(1 / 3)
    assert leakage([], baseline_accuracy=0.892, nb_classes=C) == pytest.approx(0.8909, abs=1e-4)
    assert leakage([], baseline_accuracy=None, nb_classes=C) is None


def test_cost_factor_falls_smoothly_from_one():
    assert cost_factor(0.0, 0.0) == 1.0
    assert cost_factor(0.48, 0.10) == pytest.approx(1 / 1.58)
    assert cost_factor(0.5, 0.5) == pytest.approx(0.5)
    assert cost_factor(3.89, 0.15) == pytest.approx(1 / 5.04)  # Tamaraw-like: +389 % bytes, +15 % time
    assert cost_factor(-0.2, 0.0) == 1.0  # cheaper than the reference: no bonus
    with pytest.raises(ValueError, match="finite"):
        cost_factor(math.inf, 0.0)


def test_extremes_of_the_defence_score():
    assert defence_score(advantage(0.892, C), 0.0, 0.0) == pytest.approx(0.1091, abs=1e-4)  # undefended
    assert defence_score(advantage(0.01, C), 0.0, 0.0) == 1.0  # attackers at chance, no overhead
    assert defence_score(0.0, 3.89, 0.15) == pytest.approx(0.1984, abs=1e-4)  # perfect privacy, Tamaraw's cost
    assert defence_score(advantage(1.0, C), 0.5, 0.2) == 0.0  # a perfect attack leaves nothing
    with pytest.raises(ValueError, match="leakage"):
        defence_score(1.5, 0.0, 0.0)


def test_the_worked_example_of_the_docstring():
    result = score_tradeoff(
        match_accuracies=[0.901, 0.802],
        attacker_accuracies=[0.34, 0.214],
        baseline_accuracy=0.9,
        bandwidth_overhead=0.48,
        time_overhead=0.10,
        nb_classes=C,
    )
    assert result.cost_factor == pytest.approx(0.6329, abs=1e-4)
    assert result.leakage == pytest.approx(0.3333, abs=1e-4)
    assert result.defence_score == pytest.approx(0.4219, abs=1e-4)
    assert result.attack_score == pytest.approx(0.85)
    assert result.score == pytest.approx(1.2719, abs=1e-4)
    undefended = score_tradeoff(
        match_accuracies=[0.901, 0.802],
        attacker_accuracies=[],
        baseline_accuracy=0.892,
        bandwidth_overhead=0.0,
        time_overhead=0.0,
        nb_classes=C,
    )
    assert undefended.score == pytest.approx(0.959, abs=1e-3)
    assert result.to_dict()["score"] == result.score


def test_the_tie_break_is_the_round_score_on_top5_accuracies():
    common = {"baseline_accuracy": None, "bandwidth_overhead": 0.0, "time_overhead": 0.0, "nb_classes": C}
    result = score_tradeoff(
        match_accuracies=[0.505], attacker_accuracies=[0.505], match_top5=[0.81], attacker_top5=[0.62], **common
    )
    assert result.score == pytest.approx(1.0)
    assert result.tie_break == pytest.approx((1 - 0.6) + 0.8)
    # Unknown top-5 (an attack scored before it was stored): no tie-break rather than a wrong one.
    assert score_tradeoff(match_accuracies=[0.505], attacker_accuracies=[0.505], **common).tie_break is None


def test_missing_inputs_leave_the_round_unscored_or_neutral():
    no_defence = score_tradeoff(
        match_accuracies=[1.0],
        attacker_accuracies=[],
        baseline_accuracy=None,
        bandwidth_overhead=None,
        time_overhead=None,
        nb_classes=C,
        has_defence=False,
    )
    assert (no_defence.attack_score, no_defence.defence_score, no_defence.score) == (1.0, None, None)
    pending = score_tradeoff(
        match_accuracies=[0.9],
        attacker_accuracies=[],
        baseline_accuracy=None,
        bandwidth_overhead=0.1,
        time_overhead=0.0,
        nb_classes=C,
    )
    assert pending.leakage is None and pending.score is None
    no_matches = score_tradeoff(
        match_accuracies=[],
        attacker_accuracies=[0.01],
        baseline_accuracy=None,
        bandwidth_overhead=0.0,
        time_overhead=0.0,
        nb_classes=C,
    )
    assert (no_matches.attack_score, no_matches.score) == (None, 1.0)
    best = score_tradeoff(
        match_accuracies=[1.0, 1.0],
        attacker_accuracies=[0.01],
        baseline_accuracy=0.99,
        bandwidth_overhead=0.0,
        time_overhead=0.0,
        nb_classes=C,
    )
    worst = score_tradeoff(
        match_accuracies=[0.01, None],
        attacker_accuracies=[1.0],
        baseline_accuracy=0.01,
        bandwidth_overhead=0.3,
        time_overhead=0.0,
        nb_classes=C,
    )
    assert (best.score, worst.score) == (2.0, 0.0)
