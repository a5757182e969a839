"""Match drawing: balanced, never against itself, reproducible, and avoiding previous pairs."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.evaluation.matches import draw_matches

team_sets = st.lists(st.integers(1, 10_000), min_size=2, max_size=40, unique=True)
ks = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)


@given(team_ids=team_sets, k=ks, seed=seeds)
def test_every_team_attacks_and_defends_exactly_k_times(team_ids, k, seed):
    pairs = draw_matches(team_ids, k, seed)
    expected = min(k, len(team_ids) - 1)
    attacks = Counter(attacker for attacker, _ in pairs)
    defences = Counter(defender for _, defender in pairs)
    assert len(pairs) == expected * len(team_ids)
    assert attacks == dict.fromkeys(team_ids, expected)
    assert defences == dict.fromkeys(team_ids, expected)
    assert all(attacker != defender for attacker, defender in pairs)
    assert len(set(pairs)) == len(pairs)


@given(team_ids=team_sets, k=ks, seed=seeds, data=st.data())
def test_same_teams_in_any_order_and_seed_give_the_same_draw(team_ids, k, seed, data):
    shuffled = data.draw(st.permutations(team_ids))
    assert draw_matches(team_ids, k, seed) == draw_matches(shuffled, k, seed)


def test_different_seeds_give_different_draws():
    draws = {tuple(draw_matches(range(30), 3, seed)) for seed in range(10)}
    assert len(draws) == 10


@settings(max_examples=40, deadline=None)
@given(team_ids=team_sets, k=ks, seed=seeds)
def test_a_previous_round_is_avoided_when_there_is_room(team_ids, k, seed):
    expected = min(k, len(team_ids) - 1)
    previous = draw_matches(team_ids, k, seed)
    pairs = draw_matches(team_ids, k, seed + 1, avoid=previous)
    assert Counter(attacker for attacker, _ in pairs) == dict.fromkeys(team_ids, expected)
    assert Counter(defender for _, defender in pairs) == dict.fromkeys(team_ids, expected)
    if 2 * expected <= len(team_ids) - 1:
        assert not set(pairs) & set(previous)


def test_ten_teams_three_matches_never_repeat_the_previous_round():
    previous = draw_matches(range(1, 11), 3, seed=2024)
    for seed in range(20):
        assert not set(draw_matches(range(1, 11), 3, seed, avoid=previous)) & set(previous)


def test_avoidance_keeps_the_fewest_repeats_when_all_cannot_be_avoided():
    teams = range(1, 9)
    previous = draw_matches(teams, 4, seed=1)
    # Each team may attack 7 others, 4 of them last round: at least one repeat per team.
    pairs = draw_matches(teams, 4, seed=2, avoid=previous)
    assert len(set(pairs) & set(previous)) == 8


def test_k_larger_than_possible_means_everyone_attacks_everyone():
    pairs = draw_matches([5, 6, 7], k=5, seed=0)
    assert pairs == [(5, 6), (5, 7), (6, 5), (6, 7), (7, 5), (7, 6)]


@pytest.mark.parametrize("team_ids", [[], [42]])
def test_fewer_than_two_teams_give_no_match(team_ids):
    assert draw_matches(team_ids, 3, seed=0) == []


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="repeats"):
        draw_matches([1, 2, 2], 1, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        draw_matches([1, 2, 3], -1, seed=0)
