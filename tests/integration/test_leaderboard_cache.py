"""The leaderboard cache lives in Redis: every web process sees it, it expires, and clearing it is immediate."""

from __future__ import annotations

import pytest

from app import create_app
from app.services.leaderboard_cache import clear_leaderboard
from tests import factories
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_every_web_process_shares_the_cache_until_it_is_cleared_or_expires(stack):
    a = factories.make_user("alice", team="al-bo").team
    b = factories.make_user("carol", team="cha-di").team
    factories.make_defence(a, 5.0)
    factories.make_defence(b, 5.0)
    m_ab, m_ba = factories.make_round(1, [(a, b), (b, a)])
    headers = factories.api_token(a.members[0])
    first = stack.app.test_client()
    second = create_app("testing", **{**stack.app.config, "LEADERBOARD_CACHE_TIME": 2}).test_client()

    def performance(client):
        rows = client.get("/api/v1/leaderboard?round=1", headers=headers).get_json()["rows"]
        return next(r["attack_performance"] for r in rows if r["team_name"] == "al-bo")

    assert performance(first) is None
    factories.make_attack(m_ab, 0.9)  # written behind the cache's back
    assert performance(second) is None  # the other process reads the same cached board
    clear_leaderboard()  # what recording a result does
    assert performance(second) == pytest.approx(9.0)
    factories.make_attack(m_ab, 0.7)
    assert performance(first) == pytest.approx(9.0)
    # second's entries expire after its LEADERBOARD_CACHE_TIME (2 s)
    clear_leaderboard()
    assert performance(second) == pytest.approx(7.0)
    factories.make_attack(m_ab, 0.6)
    wait_for(lambda: performance(second) == pytest.approx(6.0), timeout=10, what="the cache to expire")


def test_an_expired_board_is_recomputed_once_however_many_ask(stack):
    import threading
    import time

    from app.services.leaderboard_cache import get_or_compute

    calls = []

    def compute() -> bytes:
        calls.append(1)
        time.sleep(0.3)  # a slow board: the others must wait for it rather than compute it too
        return b"board"

    results = []

    def ask():
        with stack.app.app_context():
            results.append(get_or_compute("stampede-test", compute))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"board"] * 20
    assert len(calls) == 1
