"""Leaderboard ranking, aggregation over rounds, Pareto front and utility cost."""

import json
import math

import pytest

from app.evaluation.leaderboard import (
    LeaderboardRow,
    TeamRound,
    aggregate_rounds,
    pareto_front,
    rank_round,
    utility_cost,
)


def team(team_id, name, utility, aucs=(), expected=None, leakage=()):
    aucs = list(aucs)
    return TeamRound(
        team_id=team_id,
        team_name=name,
        utility_score=utility,
        attack_aucs=aucs,
        nb_matches_as_attacker=len(aucs) if expected is None else expected,
        leakage_aucs=list(leakage),
    )


def test_score_is_utility_times_ten_times_mean_auc():
    (row,) = rank_round([team(1, "alpha", 5.0, aucs=[0.9, 0.7], leakage=[0.6, 0.8])])
    assert row.attack_performance == pytest.approx(8.0)
    assert row.score == pytest.approx(40.0)
    assert row.privacy_leakage == pytest.approx(0.7)
    assert row.messages == []
    assert (row.attacks_done, row.attacks_expected, row.rank) == (2, 2, 1)


def test_incomplete_attacks_count_as_one():
    rows = rank_round([team(1, "alpha", 5.0, aucs=[0.9], expected=3)])
    (row,) = rows
    assert row.attack_performance is None
    assert row.score == 5.0
    assert row.messages == ["Some attacks remain to do (1 of 3 attacks done)"]


def test_ties_share_a_rank_and_are_shown_by_name():
    rows = rank_round(
        [
            team(1, "delta", 4.0, aucs=[0.5]),
            team(2, "charlie", 5.0, aucs=[0.4]),  # 5 × 4 = 20
            team(3, "bravo", 4.0, aucs=[0.5]),  # 4 × 5 = 20
            team(4, "alpha", 8.0, aucs=[0.9]),  # 72
            team(5, "echo", 1.0, aucs=[0.1]),  # 1
        ]
    )
    assert [(row.rank, row.team_name) for row in rows] == [
        (1, "alpha"),
        (2, "bravo"),
        (2, "charlie"),
        (2, "delta"),
        (5, "echo"),
    ]


def test_missing_defence_ranks_last_with_a_message():
    rows = rank_round(
        [
            team(1, "aaa", None, aucs=[1.0]),
            team(2, "zzz", 0.5, aucs=[0.1]),
            team(3, "bbb", None, aucs=[], expected=2),
        ]
    )
    assert [(row.rank, row.team_name, row.score) for row in rows] == [
        (1, "zzz", pytest.approx(0.5)),
        (2, "aaa", None),
        (2, "bbb", None),
    ]
    assert rows[1].messages == ["No defence uploaded yet"]
    assert rows[2].messages == ["No defence uploaded yet", "Some attacks remain to do (0 of 2 attacks done)"]
    assert rows[1].attack_performance == pytest.approx(10.0)
    assert rows[2].privacy_leakage is None


def test_rows_are_json_serialisable():
    rows = rank_round([team(1, "alpha", 5.0, aucs=[0.9])])
    assert json.loads(json.dumps(rows[0].to_dict()))["team_name"] == "alpha"


def row(team_id, name, score):
    return LeaderboardRow(0, team_id, name, None, None, 0, 0, score, None, [])


ROUNDS = {
    1: [row(1, "alpha", 10.0), row(2, "bravo", 30.0), row(3, "charlie", None)],
    2: [row(1, "alpha", 25.0), row(2, "bravo", None), row(3, "charlie", 12.0)],
    3: [row(1, "alpha-renamed", 5.0), row(4, "delta", None)],
}


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("sum", [(1, "alpha-renamed", 40.0), (2, "bravo", 30.0), (3, "charlie", 12.0), (4, "delta", None)]),
        ("mean", [(1, "bravo", 30.0), (2, "alpha-renamed", 40.0 / 3), (3, "charlie", 12.0), (4, "delta", None)]),
        ("best", [(1, "bravo", 30.0), (2, "alpha-renamed", 25.0), (3, "charlie", 12.0), (4, "delta", None)]),
    ],
)
def test_aggregation_over_rounds(how, expected):
    overall = aggregate_rounds(ROUNDS, how)
    assert [(r.rank, r.team_name, r.score) for r in overall] == [
        (rank, name, pytest.approx(score) if score is not None else None) for rank, name, score in expected
    ]
    alpha = next(r for r in overall if r.team_id == 1)
    assert (alpha.rounds_played, alpha.rounds_scored) == (3, 3)
    bravo = next(r for r in overall if r.team_id == 2)
    assert (bravo.rounds_played, bravo.rounds_scored) == (2, 1)
    assert json.loads(json.dumps(bravo.to_dict()))["round_scores"] == {"1": 30.0, "2": None}


def test_aggregation_ties_share_a_rank():
    rounds = {1: [row(1, "b", 2.0), row(2, "a", 1.0)], 2: [row(2, "a", 1.0)]}
    overall = aggregate_rounds(rounds, "sum")
    assert [(r.rank, r.team_name) for r in overall] == [(1, "a"), (1, "b")]


def test_aggregation_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="sum, mean, best"):
        aggregate_rounds(ROUNDS, "median")


def test_pareto_front_minimises_both_coordinates():
    points = [(1.0, 0.9), (2.0, 0.7), (3.0, 0.8), (2.0, 0.7), (4.0, 0.5), (4.5, 0.5), (0.5, math.nan)]
    # (3, 0.8) is dominated by (2, 0.7); (4.5, 0.5) by (4, 0.5); duplicates both stay.
    assert pareto_front(points) == [0, 1, 3, 4]
    assert pareto_front([]) == []


def test_utility_cost_inverts_the_utility_score():
    assert utility_cost(64 / 11.2) == pytest.approx(11.2)
    assert utility_cost(8.0) < utility_cost(4.0)


def test_overall_intervals_combine_the_rounds_and_mark_ties():
    from types import SimpleNamespace as Row

    rounds = {
        1: [
            Row(team_id=1, team_name="a", score=10.0, score_pm=0.3),
            Row(team_id=2, team_name="b", score=9.0, score_pm=0.4),
        ],
        2: [
            Row(team_id=1, team_name="a", score=8.0, score_pm=0.4),
            Row(team_id=2, team_name="b", score=8.5, score_pm=0.3),
        ],
    }
    total = aggregate_rounds(rounds, "sum")
    assert [(r.team_name, r.score) for r in total] == [("a", 18.0), ("b", 17.5)]
    assert total[0].score_pm == pytest.approx(0.5)  # sqrt(0.3² + 0.4²)
    assert total[1].tied_with_above  # 17.5 + 0.5 reaches 18 − 0.5
    mean = aggregate_rounds(rounds, "mean")
    assert mean[0].score_pm == pytest.approx(0.25)
    best = aggregate_rounds(rounds, "best")
    assert [(r.team_name, r.score_pm) for r in best] == [("a", 0.3), ("b", 0.4)] and not best[1].tied_with_above
    assert "round_score_pms" not in total[0].to_dict() and total[0].to_dict()["tied_with_above"] is False
