"""The tradeoff scoring mode on hand-computed cases, extremes included."""

import math

import pytest

from app.evaluation.tradeoff import (
    advantage,
    attack_score,
    cost_factor,
    defence_score,
    leakage,
    score_tradeoff,
)


def test_advantage_is_zero_at_chance_and_one_for_a_perfect_attack():
    assert advantage(0.5) == 0.0  # chance attack
    assert advantage(1.0) == 1.0  # perfect attack
    assert advantage(0.83) == pytest.approx(0.66)
    assert advantage(0.2) == 0.0  # worse than chance earns nothing
    for bad in (1.2, -0.1, math.nan):
        with pytest.raises(ValueError, match="ROC-AUC"):
            advantage(bad)


def test_attack_score_is_the_mean_advantage_and_a_missing_attack_counts_as_chance():
    assert attack_score([0.99, 0.95]) == pytest.approx((0.98 + 0.90) / 2)
    assert attack_score([1.0, None]) == pytest.approx(0.5)
    assert attack_score([0.5, 0.5, 0.5]) == 0.0
    assert attack_score([]) is None


def test_leakage_is_the_best_attacker_else_the_baseline():
    assert leakage([0.83, 0.79], baseline_auc=0.99) == pytest.approx(0.66)
    assert leakage([], baseline_auc=0.992) == pytest.approx(0.984)
    assert leakage([], baseline_auc=None) is None


def test_cost_factor_falls_smoothly_from_one():
    assert cost_factor(0.0, 0.0) == 1.0
    assert cost_factor(0.48, 0.10) == pytest.approx(1 / 1.58)
    assert cost_factor(0.5, 0.5) == pytest.approx(0.5)
    assert cost_factor(3.89, 0.15) == pytest.approx(1 / 5.04)  # Tamaraw-like: +389 % bytes, +15 % time
    assert cost_factor(-0.2, 0.0) == 1.0  # cheaper than the reference: no bonus
    with pytest.raises(ValueError, match="finite"):
        cost_factor(math.inf, 0.0)


def test_extremes_of_the_defence_score():
    # No defence: undefended traffic costs nothing and the baseline reads it almost perfectly.
    assert defence_score(advantage(0.992), 0.0, 0.0) == pytest.approx(0.016)
    # Perfect defence: attackers at chance, no overhead.
    assert defence_score(advantage(0.5), 0.0, 0.0) == 1.0
    # Perfect privacy bought with a Tamaraw-like cost.
    assert defence_score(0.0, 3.89, 0.15) == pytest.approx(0.1984, abs=1e-4)
    # A perfect attack leaves nothing, whatever the cost.
    assert defence_score(advantage(1.0), 0.5, 0.2) == 0.0
    with pytest.raises(ValueError, match="leakage"):
        defence_score(1.5, 0.0, 0.0)


def test_the_worked_example_of_the_docstring():
    result = score_tradeoff(
        match_aucs=[0.99, 0.95],
        attacker_aucs=[0.83, 0.79],
        baseline_auc=0.9,
        bandwidth_overhead=0.48,
        time_overhead=0.10,
    )
    assert result.cost_factor == pytest.approx(0.6329, abs=1e-4)
    assert result.leakage == pytest.approx(0.66)
    assert result.defence_score == pytest.approx(0.2152, abs=1e-4)
    assert result.attack_score == pytest.approx(0.94)
    assert result.score == pytest.approx(1.1552, abs=1e-4)
    undefended = score_tradeoff(
        match_aucs=[0.99, 0.95], attacker_aucs=[], baseline_auc=0.992, bandwidth_overhead=0.0, time_overhead=0.0
    )
    assert undefended.score == pytest.approx(0.956)
    assert result.to_dict()["score"] == result.score


def test_missing_inputs_leave_the_round_unscored_or_neutral():
    no_defence = score_tradeoff(
        match_aucs=[1.0],
        attacker_aucs=[],
        baseline_auc=None,
        bandwidth_overhead=None,
        time_overhead=None,
        has_defence=False,
    )
    assert (no_defence.attack_score, no_defence.defence_score, no_defence.score) == (1.0, None, None)
    pending = score_tradeoff(
        match_aucs=[0.9], attacker_aucs=[], baseline_auc=None, bandwidth_overhead=0.1, time_overhead=0.0
    )
    assert pending.leakage is None and pending.score is None
    no_matches = score_tradeoff(
        match_aucs=[], attacker_aucs=[0.5], baseline_auc=None, bandwidth_overhead=0.0, time_overhead=0.0
    )
    assert (no_matches.attack_score, no_matches.score) == (None, 1.0)
    # Extremes of the round score: a perfect defence and a perfect attack make 2; nothing at all makes 0.
    best = score_tradeoff(
        match_aucs=[1.0, 1.0], attacker_aucs=[0.5], baseline_auc=0.99, bandwidth_overhead=0.0, time_overhead=0.0
    )
    worst = score_tradeoff(
        match_aucs=[0.5, None], attacker_aucs=[1.0], baseline_auc=0.5, bandwidth_overhead=0.3, time_overhead=0.0
    )
    assert (best.score, worst.score) == (2.0, 0.0)
