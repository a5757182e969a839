"""LEADERBOARD_SCORING=tradeoff: defence score + attack score, checked on hand-computed rounds; the switch
recomputes the boards; the plot shows every defence, attacked or not; intervals shown as ±."""

from __future__ import annotations

import html
import re
import uuid

import pytest

from app.extensions import db
from app.models import BaselineRun, Defence, SubmissionStatus
from tests.factories import make_attack, make_defence, make_round, make_team


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def defence_with(team, overheads=None, baseline_auc=None, utility=5.0) -> Defence:
    defence = make_defence(team, utility)
    defence.overheads = overheads
    if baseline_auc is not None:
        db.session.add(
            BaselineRun(
                defence_id=defence.id,
                status=SubmissionStatus.SUCCEEDED,
                accuracy=0.5,
                top5_accuracy=0.8,
                roc_auc=baseline_auc,
                intervals={
                    "roc_auc": {"estimate": baseline_auc, "low": baseline_auc - 0.01, "high": baseline_auc + 0.01}
                },
            )
        )
    db.session.commit()
    return defence


def board(client, round_number=None):
    query = "" if round_number is None else f"?round={round_number}"
    return client.get(f"/api/v1/leaderboard{query}").get_json()


@pytest.fixture
def tradeoff(app):
    app.config["LEADERBOARD_SCORING"] = "tradeoff"
    return app


def test_a_round_scored_by_hand(tradeoff, client, auth, alice):
    a, b = alice.team, make_team("cha-di")
    defence_with(a, {"bandwidth_total": 48.0, "time": 10.0, "bandwidth_in": 50.0, "bandwidth_out": 40.0}, 0.83)
    defence_with(b, {"bandwidth_total": 0.0, "time": 0.0}, 0.99)
    a_attacks_b, b_attacks_a = make_round(1, [(a, b), (b, a)])
    make_attack(a_attacks_b, 0.95)
    auth.login()
    rows = {r["team_name"]: r for r in board(client)["rows"]}
    # al-bo: attack 2 × (0.95 − 0.5) = 0.9; not attacked yet, so leakage = baseline 2 × (0.83 − 0.5) = 0.66;
    # cost factor 1 / (1 + 0.48 + 0.10); defence (1 − 0.66) / 1.58 = 0.215190; round 1.115190.
    assert rows["al-bo"]["attack_score"] == pytest.approx(0.9)
    assert rows["al-bo"]["leakage"] == pytest.approx(0.66) and rows["al-bo"]["leakage_source"] == "baseline"
    assert rows["al-bo"]["cost_factor"] == pytest.approx(1 / 1.58)
    assert rows["al-bo"]["defence_score"] == pytest.approx(0.34 / 1.58)
    assert rows["al-bo"]["score"] == pytest.approx(0.9 + 0.34 / 1.58)
    # cha-di: its one attack not done (counts 0); al-bo's attack leaks 0.9 of its free defence: 0.1.
    assert rows["cha-di"]["attack_score"] == 0.0 and rows["cha-di"]["leakage_source"] == "attackers"
    assert rows["cha-di"]["defence_score"] == pytest.approx(0.1) and rows["cha-di"]["score"] == pytest.approx(0.1)
    assert [r["team_name"] for r in board(client)["rows"]] == ["al-bo", "cha-di"]
    assert rows["cha-di"]["rank"] == 2

    make_attack(b_attacks_a, 0.6)  # a weaker attacker than the baseline replaces it: leakage 0.2
    rows = {r["team_name"]: r for r in board(client)["rows"]}
    assert rows["al-bo"]["leakage"] == pytest.approx(0.2) and rows["al-bo"]["leakage_source"] == "attackers"
    assert rows["al-bo"]["score"] == pytest.approx(0.9 + 0.8 / 1.58)
    assert rows["cha-di"]["score"] == pytest.approx(0.1 + 0.2)

    page = text(client.get("/leaderboard/"))
    assert "Round score = defence score + attack score" in page
    assert (
        "How the trade-off score is computed" in page and "1 / (1 + total bandwidth overhead + time overhead)" in page
    )
    assert "Round 1, trade-off scoring" in page
    assert f"{0.9 + 0.8 / 1.58:.3f}" in page and "best attacker" in page


def test_the_extremes_before_any_round(tradeoff, client, auth, alice):
    """Undefended traffic scores almost nothing, a perfect free defence 1, a chance-level attack 0."""
    undefended, perfect, pending, costly = alice.team, make_team("cha-di"), make_team("eu-fra"), make_team("ger-hec")
    defence_with(undefended, {"bandwidth_total": 0.0, "time": 0.0}, 0.992)
    defence_with(perfect, {"bandwidth_total": -5.0, "time": 0.0}, 0.5)  # cheaper than the reference: no bonus
    defence_with(pending, {"bandwidth_total": 10.0, "time": 0.0})  # baseline not run yet
    defence_with(costly, {"bandwidth_total": 100.0, "time": 0.0}, 0.3)  # worse than chance counts as chance
    auth.login()
    answer = board(client)
    assert answer["scoring"] == "tradeoff" and answer["generated"] is False
    rows = {r["team_name"]: r for r in answer["rows"]}
    assert rows["al-bo"]["defence_score"] == pytest.approx(1 - 0.984)
    assert rows["cha-di"]["defence_score"] == pytest.approx(1.0) and rows["cha-di"]["cost_factor"] == 1.0
    assert rows["ger-hec"]["defence_score"] == pytest.approx(0.5)
    assert rows["eu-fra"]["score"] is None and any("not estimated yet" in m for m in rows["eu-fra"]["messages"])
    assert [r["team_name"] for r in answer["rows"]] == ["cha-di", "ger-hec", "al-bo", "eu-fra"]
    assert rows["al-bo"]["attack_score"] is None  # no match yet


def test_a_perfect_attack_and_missing_overheads(tradeoff, client, auth, alice):
    a, b = alice.team, make_team("cha-di")
    defence_with(a, None, 0.9)  # overheads not measured
    defence_with(b, {"bandwidth_total": 20.0, "time": 5.0})
    match, _ = make_round(1, [(a, b), (b, a)])
    make_attack(match, 1.0)
    auth.login()
    rows = {r["team_name"]: r for r in board(client)["rows"]}
    assert (
        rows["cha-di"]["leakage"] == 1.0 and rows["cha-di"]["defence_score"] == 0.0 and rows["cha-di"]["score"] == 0.0
    )
    assert rows["al-bo"]["attack_score"] == 1.0 and rows["cha-di"]["attack_score"] == 0.0
    assert rows["al-bo"]["score"] is None and any("Overheads" in m for m in rows["al-bo"]["messages"])


def test_the_overall_board_adds_tradeoff_round_scores(tradeoff, client, auth, alice):
    a, b = alice.team, make_team("cha-di")
    defence_with(a, {"bandwidth_total": 0.0, "time": 0.0}, 0.9)
    defence_with(b, {"bandwidth_total": 0.0, "time": 0.0}, 0.7)
    make_attack(make_round(1, [(a, b), (b, a)])[0], 0.8)  # cha-di never attacks: its attack score is 0
    make_attack(make_round(2, [(a, b), (b, a)])[0], 0.9)
    auth.login()
    overall = client.get("/api/v1/leaderboard/overall").get_json()
    assert overall["scoring"] == "tradeoff"
    rows = {r["team_name"]: r for r in overall["rows"]}
    # al-bo: attack 0.6 then 0.8; its defence leaks the baseline's 0.8 both rounds: 0.2 + 0.2.
    assert rows["al-bo"]["score"] == pytest.approx(0.6 + 0.2 + 0.8 + 0.2)
    assert rows["cha-di"]["score"] == pytest.approx((1 - 0.6) + (1 - 0.8))


def test_switching_the_mode_recomputes_the_cached_boards(app, client, auth, alice):
    app.config.update(LEADERBOARD_CACHE_TIME=60, REDIS_KEY_PREFIX=f"srs-test-{uuid.uuid4().hex}:")
    defence_with(alice.team, {"bandwidth_total": 0.0, "time": 0.0}, 0.75)
    auth.login()
    first = board(client)
    assert first["scoring"] == "original" and "defence_score" not in first["rows"][0]
    assert first["rows"][0]["baseline_roc_auc"] == 0.75
    app.config["LEADERBOARD_SCORING"] = "tradeoff"
    second = board(client)
    assert second["scoring"] == "tradeoff" and second["rows"][0]["defence_score"] == pytest.approx(0.5)
    assert "Defence score" in text(client.get("/leaderboard/"))
    app.config["LEADERBOARD_SCORING"] = "original"
    assert "Defence score" not in text(client.get("/leaderboard/"))


def test_the_plot_shows_every_defence_attacked_or_not(app, client, auth, alice):
    a, b, c = alice.team, make_team("cha-di"), make_team("eu-fra")
    defence_with(a, None, 0.95, utility=5.0)
    defence_with(b, None, 0.7, utility=6.0)
    defence_with(c, None, utility=7.0)  # no estimate yet and not attacked: not plotted
    match, _ = make_round(1, [(a, b), (b, a)])  # cha-di's attack on al-bo is not in yet
    attack = make_attack(match, 0.8)
    attack.intervals = {"roc_auc": {"estimate": 0.8, "low": 0.76, "high": 0.84}}
    # The round is open: the board counts the public-subset score, with the public subset's interval.
    attack.public_scores = {**attack.public_scores, "intervals": attack.intervals}
    db.session.commit()
    auth.login()
    answer = client.get("/api/v1/leaderboard").get_json()
    rows = {r["team_name"]: r for r in answer["rows"]}
    assert rows["cha-di"]["privacy_leakage_pm"] == pytest.approx(0.04)
    assert rows["al-bo"]["attack_performance_pm"] == pytest.approx(0.4)  # 10 × ROC-AUC
    assert rows["al-bo"]["privacy_leakage"] is None and rows["al-bo"]["baseline_roc_auc"] == 0.95
    page = client.get("/leaderboard/").get_data(as_text=True)
    plot = page[page.index('id="tradeoff-data"') :]
    assert "al-bo" in plot and "cha-di" in plot and "eu-fra" not in plot
    assert "(baseline)" in plot  # al-bo is not attacked: placed at its baseline estimate
    assert "baseline attack: no attacker has scored yet" in page  # its hollow marker's label
    words = text(client.get("/leaderboard/"))
    assert "8.000 ± 0.400" in words and "0.800 ± 0.040" in words
