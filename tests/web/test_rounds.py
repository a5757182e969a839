"""Round generation through the admin page and the API: who plays, balance, pinning, and refusals."""

from __future__ import annotations

from collections import Counter

import pytest

from tests import factories


@pytest.fixture
def teams(app):
    """Four teams with a defence, one without."""
    teams = [factories.make_user(f"student{i}", team=f"team{i}").team for i in range(5)]
    for team in teams[:4]:
        factories.make_defence(team)
    return teams


def test_generate_page_lists_players_and_left_out_teams(client, admin, teams):
    client.post("/login", data={"username": "admin", "password": "secret-pw"})
    page = client.get("/generate_matches/").get_data(as_text=True)
    assert "Generate matches for round 1" in page
    assert "Teams that will play (4)" in page
    assert "No successful defence: team4." in page


def test_admin_generates_the_next_round_on_the_page(client, admin, teams):
    client.post("/login", data={"username": "admin", "password": "secret-pw"})
    response = client.post("/generate_matches/", data={"round": 1}, follow_redirects=True)
    assert "Round 1 generated: 12 matches." in response.get_data(as_text=True)
    assert 'Round <strong id="banner-round">1</strong>' in response.get_data(as_text=True)
    again = client.post("/generate_matches/", data={"round": 1})
    assert again.status_code == 409 and "Round 1 cannot be generated" in again.get_data(as_text=True)


def test_rounds_api_balances_matches_and_pins_defences(client, admin, teams):
    headers = factories.api_token(admin)
    response = client.post("/api/v1/rounds", json={"round": 1}, headers=headers)
    assert response.status_code == 201
    matches = response.get_json()["matches"]
    players = {t.id for t in teams[:4]}
    attacks = Counter(m["attacker_team_id"] for m in matches)
    defended = Counter(m["defender_team_id"] for m in matches)
    assert set(attacks) == set(defended) == players  # team4 has no defence: left out
    assert set(attacks.values()) == set(defended.values()) == {3}  # k = min(MATCHES_PER_TEAM, players - 1)
    assert all(m["attacker_team_id"] != m["defender_team_id"] for m in matches)
    # a defence uploaded afterwards does not change what the round pinned
    pinned = {m.id: m.defence_id for m in factories.round_matches(1)}
    factories.make_defence(teams[0], 7.0)
    assert {m.id: m.defence_id for m in factories.round_matches(1)} == pinned
    listed = client.get("/api/v1/matches?round=1", headers=headers).get_json()
    assert len(listed) == 12


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"round": 2}, 409, "the next one is 1"),
        ({"round": 0}, 409, "the next one is 1"),
        ({"round": "1"}, 400, '{"round": n}'),
        ({}, 400, '{"round": n}'),
    ],
)
def test_rounds_api_refuses_anything_but_the_next_round(client, admin, teams, body, status, words):
    response = client.post("/api/v1/rounds", json=body, headers=factories.api_token(admin))
    assert response.status_code == status
    assert words in response.get_json()["message"]


def test_a_round_needs_two_teams_with_a_defence(client, admin, app):
    factories.make_defence(factories.make_user("solo", team="solo-team").team)
    response = client.post("/api/v1/rounds", json={"round": 1}, headers=factories.api_token(admin))
    assert response.status_code == 409 and "at least two teams" in response.get_json()["message"]


def test_students_cannot_generate_rounds(client, teams):
    student = teams[0].members[0]
    assert client.post("/api/v1/rounds", json={"round": 1}, headers=factories.api_token(student)).status_code == 403
    assert client.post("/api/v1/rounds", json={"round": 1}).status_code == 401
    assert client.get("/generate_matches/").status_code == 302
    client.post("/login", data={"username": student.username, "password": "secret-pw"})
    assert client.get("/generate_matches/").status_code == 403
    assert client.post("/generate_matches/", data={"round": 1}).status_code == 403
    assert factories.round_matches(1) == []
