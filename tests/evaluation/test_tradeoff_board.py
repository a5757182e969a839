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


C = 100


def test_ranking_ties_and_missing_scores():
    teams = [
        TradeoffTeam(1, "b", True, [0.505], [0.505], bandwidth_overhead=0.0, time_overhead=0.0),  # 0.5 + 0.5
        TradeoffTeam(2, "a", True, [0.505], [0.505], bandwidth_overhead=0.0, time_overhead=0.0),  # tie, name first
        TradeoffTeam(3, "c", True, [None], [], baseline_accuracy=None, bandwidth_overhead=0.0, time_overhead=0.0),
        TradeoffTeam(4, "d", False, [1.0], []),
    ]
    rows = rank_tradeoff_round(teams, C)
    assert [(r.team_name, r.rank) for r in rows] == [("a", 1), ("b", 1), ("c", 3), ("d", 3)]
    assert rows[0].score == pytest.approx(1.0)
    assert rows[1].tied_with_above and not rows[0].tied_with_above  # sharing a rank is a tie
    assert rows[2].score is None and rows[2].attacks_done == 0 and rows[2].attacks_expected == 1
    assert not rows[2].tied_with_above and not rows[3].tied_with_above  # unscored rows are never tied
    assert rows[3].messages == ["No defence uploaded yet"] and rows[3].attack_score == 1.0


def test_top5_accuracy_breaks_equal_round_scores():
    def team(team_id, name, top5):
        return TradeoffTeam(
            team_id,
            name,
            True,
            [0.505],
            [0.505],
            bandwidth_overhead=0.0,
            time_overhead=0.0,
            match_top5=[top5],
            attacker_top5=[0.62],
        )

    rows = rank_tradeoff_round([team(1, "a", 0.70), team(2, "b", 0.90)], C)
    assert [(r.team_name, r.rank) for r in rows] == [("b", 1), ("a", 2)]  # same score, b's attack ranks better
    assert rows[0].score == pytest.approx(rows[1].score)


def test_overlapping_intervals_mark_a_statistical_tie_but_ranks_follow_the_scores():
    def team(team_id, name, accuracy, width):
        return TradeoffTeam(
            team_id,
            name,
            True,
            [accuracy],
            [0.01],
            bandwidth_overhead=0.0,
            time_overhead=0.0,
            match_half_widths=[width],
            attacker_half_widths=[0.0],
        )

    # Scores 1 + adv: 1.80, 1.77 (intervals ± 0.025 overlap), 1.60 (± 0.025: clear of 1.77's).
    rows = rank_tradeoff_round([team(1, "x", 0.802, 0.025), team(2, "y", 0.7723, 0.025), team(3, "z", 0.604, 0.025)], C)
    assert [r.team_name for r in rows] == ["x", "y", "z"] and [r.rank for r in rows] == [1, 2, 3]
    assert [r.tied_with_above for r in rows] == [False, True, False]
    assert rows[1].score_pm == pytest.approx(0.025 / 0.99)
    # Narrow intervals: no tie.
    rows = rank_tradeoff_round([team(1, "x", 0.802, 0.005), team(2, "y", 0.7723, 0.005)], C)
    assert [r.tied_with_above for r in rows] == [False, False]


def test_the_half_widths_follow_the_advantage():
    team = TradeoffTeam(
        1,
        "a",
        True,
        [0.901, None],
        [0.703, 0.604],
        bandwidth_overhead=0.0,
        time_overhead=0.0,
        match_half_widths=[0.03, None],
        attacker_half_widths=[0.02, 0.05],
    )
    (row,) = rank_tradeoff_round([team], C)
    assert row.attack_score == pytest.approx(0.45)
    assert row.attack_score_pm == pytest.approx(0.03 / 2 / 0.99)  # the missing attack counts 0 ± 0
    assert row.leakage == pytest.approx(0.7) and row.leakage_pm == pytest.approx(0.02 / 0.99)  # the best attacker
    assert row.score_pm == pytest.approx(((0.02 / 0.99) ** 2 + (0.03 / 2 / 0.99) ** 2) ** 0.5)
