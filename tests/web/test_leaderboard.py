"""The leaderboard, page and API: ranks, messages, aggregation, plot, and a fixed number of queries."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from tests import factories


def _teams(n: int, start: int = 0):
    return [factories.make_user(f"student{i}", team=f"team{i:03d}").team for i in range(start, start + n)]


@pytest.fixture
def scored_round(app):
    """Three teams, each attacking the two others; team000 finished, team001 half done, team002 nothing."""
    a, b, c = _teams(3)
    factories.make_defence(a, 6.0)
    factories.make_defence(b, 5.0)
    factories.make_defence(c, 4.0)
    matches = {
        (m.attacker_team_id, m.defender_team_id): m
        for m in factories.make_round(1, [(a, b), (a, c), (b, a), (b, c), (c, a), (c, b)])
    }
    factories.make_attack(matches[(a.id, b.id)], 0.9)
    factories.make_attack(matches[(a.id, c.id)], 0.7)
    factories.make_attack(matches[(b.id, a.id)], 0.6)
    return a, b, c


def test_round_rows_hold_scores_ranks_and_messages(client, scored_round):
    a, b, c = scored_round
    factories.make_user("viewer", team="viewers")
    client.post("/login", data={"username": "viewer", "password": "secret-pw"})
    token = client.post("/api/v1/tokens", auth=("viewer", "secret-pw")).get_json()["token"]
    body = client.get("/api/v1/leaderboard?round=1", headers={"Authorization": f"Bearer {token}"}).get_json()
    rows = {r["team_name"]: r for r in body["rows"]}
    assert body["round"] == 1
    # team000: utility 6 × mean(10 × 0.9, 10 × 0.7) = 6 × 8 = 48
    assert rows["team000"]["attack_performance"] == pytest.approx(8.0)
    assert rows["team000"]["score"] == pytest.approx(48.0) and rows["team000"]["rank"] == 1
    # unfinished attacks count as 1.0 in the score
    assert rows["team001"]["attack_performance"] is None and rows["team001"]["score"] == pytest.approx(5.0)
    assert rows["team002"]["privacy_leakage"] == pytest.approx(0.7)
    page = client.get("/leaderboard/?round=1").get_data(as_text=True)
    assert "1 of 2 attacks done" in page and "0 of 2 attacks done" in page
    assert "Some attacks remain to do" in page
    assert "<svg" in page and "team000" in page and "Pareto" in page


def test_a_team_without_defence_ranks_last_with_the_original_message(client, app):
    (a, b) = _teams(2)
    factories.make_defence(a, 5.0)
    client.post("/login", data={"username": "student1", "password": "secret-pw"})
    page = client.get("/leaderboard/").get_data(as_text=True)
    assert "No defence uploaded yet" in page
    assert page.index("team000") < page.index("team001")


def test_ties_share_a_rank(client, app):
    a, b = _teams(2)
    factories.make_defence(a, 5.0)
    factories.make_defence(b, 5.0)
    m1, m2 = factories.make_round(1, [(a, b), (b, a)])
    factories.make_attack(m1, 0.8)
    factories.make_attack(m2, 0.8)
    headers = factories.api_token(a.members[0])
    rows = client.get("/api/v1/leaderboard", headers=headers).get_json()["rows"]
    assert [r["rank"] for r in rows] == [1, 1]


def test_overall_view_sums_rounds_by_default(client, scored_round):
    a, b, c = scored_round
    m1, m2 = factories.make_round(2, [(a, b), (b, a)])
    factories.make_attack(m1, 0.5)
    factories.make_attack(m2, 0.5)
    headers = factories.api_token(a.members[0])
    body = client.get("/api/v1/leaderboard/overall", headers=headers).get_json()
    rows = {r["team_name"]: r for r in body["rows"]}
    assert body["aggregation"] == "sum"
    assert rows["team000"]["score"] == pytest.approx(48.0 + 6.0 * 5.0)
    client.post("/login", data={"username": "student0", "password": "secret-pw"})
    page = client.get("/leaderboard/?view=overall").get_data(as_text=True)
    assert "Round 1" in page and "Round 2" in page and "sum" in page


def test_aggregation_is_configurable(client, scored_round, app):
    a, _, _ = scored_round
    app.config["LEADERBOARD_AGGREGATION"] = "best"
    body = client.get("/api/v1/leaderboard/overall", headers=factories.api_token(a.members[0])).get_json()
    assert body["aggregation"] == "best"


def test_unknown_round_is_404(client, scored_round):
    a, _, _ = scored_round
    assert client.get("/api/v1/leaderboard?round=7", headers=factories.api_token(a.members[0])).status_code == 404


def _count_queries(client, url: str) -> int:
    statements = []

    def count(conn, cursor, statement, *args):
        if "leaderboard" not in statement:
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_the_leaderboard_takes_a_fixed_number_of_queries(client, app):
    teams = _teams(4)
    for t in teams:
        factories.make_defence(t)
    factories.make_round(1, [(teams[i], teams[(i + 1) % 4]) for i in range(4)])
    client.post("/login", data={"username": "student0", "password": "secret-pw"})
    small = _count_queries(client, "/leaderboard/?round=1")
    more = _teams(26, start=4)
    for t in more:
        factories.make_defence(t)
    factories.make_round(2, [(more[i], more[(i + 1) % len(more)]) for i in range(len(more))])
    large = _count_queries(client, "/leaderboard/?round=2")
    assert large == small
