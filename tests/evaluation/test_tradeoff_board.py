"""The tradeoff round ranking and the combined half-widths shown as ± on the leaderboard."""

import pytest

from app.evaluation.confidence import combined_half_width, half_width
from app.evaluation.tradeoff_board import TradeoffTeam, percent_to_fraction, rank_tradeoff_round


def test_combined_half_width_of_a_mean():
    assert combined_half_width([0.03, 0.04]) == pytest.approx(0.05 / 2)
    assert combined_half_width([0.02]) == pytest.approx(0.02)
    assert combined_half_width([]) is None and combined_half_width([0.1, None]) is None
    assert half_width({"roc_auc": {"estimate": 0.9, "low": 0.86, "high": 0.92}}, "roc_auc") == pytest.approx(0.03)
    assert half_width(None, "roc_auc") is None


def test_percent_overheads_become_fractions():
    assert percent_to_fraction(48.0) == pytest.approx(0.48)
    assert percent_to_fraction(None) is None and percent_to_fraction(float("nan")) is None


def test_ranking_ties_and_missing_scores():
    teams = [
        TradeoffTeam(1, "b", True, [0.75], [0.75], bandwidth_overhead=0.0, time_overhead=0.0),  # 0.5 + 0.5
        TradeoffTeam(2, "a", True, [0.75], [0.75], bandwidth_overhead=0.0, time_overhead=0.0),  # tie, name first
        TradeoffTeam(3, "c", True, [None], [], baseline_auc=None, bandwidth_overhead=0.0, time_overhead=0.0),
        TradeoffTeam(4, "d", False, [1.0], []),
    ]
    rows = rank_tradeoff_round(teams)
    assert [(r.team_name, r.rank) for r in rows] == [("a", 1), ("b", 1), ("c", 3), ("d", 3)]
    assert rows[0].score == pytest.approx(1.0)
    assert rows[2].score is None and rows[2].attacks_done == 0 and rows[2].attacks_expected == 1
    assert rows[3].messages == ["No defence uploaded yet"] and rows[3].attack_score == 1.0


def test_the_half_widths_follow_the_advantage():
    team = TradeoffTeam(
        1,
        "a",
        True,
        [0.9, None],
        [0.8, 0.7],
        bandwidth_overhead=0.0,
        time_overhead=0.0,
        match_half_widths=[0.03, None],
        attacker_half_widths=[0.02, 0.05],
    )
    (row,) = rank_tradeoff_round([team])
    assert row.attack_score == pytest.approx(0.4)
    assert row.attack_score_pm == pytest.approx(2 * 0.03 / 2)  # the missing attack counts 0 ± 0
    assert row.leakage == pytest.approx(0.6) and row.leakage_pm == pytest.approx(0.04)  # from the best attacker
