"""LEADERBOARD_SCORING=tradeoff: defence score + attack score, checked on hand-computed rounds; the switch
recomputes the boards; the plot shows every defence, attacked or not; intervals shown as ±."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from flask import current_app

from app.extensions import db
from app.models import BaselineRun, Defence, SubmissionStatus
from tests.factories import make_attack, make_defence, make_round, make_team


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def defence_with(team, overheads=None, baseline_accuracy=None, utility=5.0, baseline_auc=0.9) -> Defence:
    defence = make_defence(team, utility)
    defence.overheads = overheads
    if baseline_accuracy is not None:
        db.session.add(
            BaselineRun(
                defence_id=defence.id,
                status=SubmissionStatus.SUCCEEDED,
                accuracy=baseline_accuracy,
                top5_accuracy=min(1.0, baseline_accuracy + 0.1),
                roc_auc=baseline_auc,
                intervals={
                    "accuracy": {
                        "estimate": baseline_accuracy,
                        "low": baseline_accuracy - 0.01,
                        "high": baseline_accuracy + 0.01,
                    },
                    "roc_auc": {"estimate": baseline_auc, "low": baseline_auc - 0.01, "high": baseline_auc + 0.01},
                },
            )
        )
    db.session.commit()
    return defence


def acc(advantage: float) -> float:
    """The accuracy over 100 cells whose advantage (accuracy − 1/100) / (1 − 1/100) is `advantage`."""
    return 0.01 + 0.99 * advantage


def board(client, round_number=None):
    query = "" if round_number is None else f"?round={round_number}"
    return client.get(f"/api/v1/leaderboard{query}").get_json()


@pytest.fixture
def tradeoff(app):
    settings = {"LEADERBOARD_SCORING": "tradeoff", "NB_CLASSES": 100}
    app.config.update(settings)
    current_app.config.update(settings)  # the twin app whose context the test (and a CLI command) runs in
    return app


def test_a_round_scored_by_hand(tradeoff, client, auth, alice):
    a, b = alice.team, make_team("cha-di")
    defence_with(a, {"bandwidth_total": 48.0, "time": 10.0, "bandwidth_in": 50.0, "bandwidth_out": 40.0}, acc(0.66))
    defence_with(b, {"bandwidth_total": 0.0, "time": 0.0}, acc(0.98))
    a_attacks_b, b_attacks_a = make_round(1, [(a, b), (b, a)])
    make_attack(a_attacks_b, 0.99, accuracy=acc(0.9))
    auth.login()
    rows = {r["team_name"]: r for r in board(client)["rows"]}
    # al-bo: attack (0.901 − 0.01) / 0.99 = 0.9; not attacked yet, so leakage = the baseline's 0.66;
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
    for row in rows.values():  # the contract for scripts: fractions in [0, 1], and the tie mark
        assert 0.0 <= row["leakage"] <= 1.0 and 0.0 <= row["attack_score"] <= 1.0
        assert row["tied_with_above"] is False

    make_attack(b_attacks_a, 0.99, accuracy=acc(0.2))  # a weaker attacker than the baseline replaces it
    rows = {r["team_name"]: r for r in board(client)["rows"]}
    assert rows["al-bo"]["leakage"] == pytest.approx(0.2) and rows["al-bo"]["leakage_source"] == "attackers"
    assert rows["al-bo"]["score"] == pytest.approx(0.9 + 0.8 / 1.58)
    assert rows["cha-di"]["score"] == pytest.approx(0.1 + 0.2)

    page = text(client.get("/leaderboard/"))
    assert "Round score = defence score + attack score" in page
    assert (
        "How the trade-off score is computed" in page and "1 / (1 + total bandwidth overhead + time overhead)" in page
    )
    assert "(accuracy − 1/C) / (1 − 1/C)" in page and "C = 100 cells" in page
    assert "Round 1, trade-off scoring" in page
    assert f"{0.9 + 0.8 / 1.58:.3f}" in page and "best attacker" in page


def test_the_extremes_before_any_round(tradeoff, client, auth, alice):
    """Undefended traffic scores almost nothing, a perfect free defence 1, a chance-level attack 0."""
    undefended, perfect, pending, costly = alice.team, make_team("cha-di"), make_team("eu-fra"), make_team("ger-hec")
    defence_with(undefended, {"bandwidth_total": 0.0, "time": 0.0}, acc(0.984))
    defence_with(perfect, {"bandwidth_total": -5.0, "time": 0.0}, 0.01)  # cheaper than the reference: no bonus
    defence_with(pending, {"bandwidth_total": 10.0, "time": 0.0})  # baseline not run yet
    defence_with(costly, {"bandwidth_total": 100.0, "time": 0.0}, 0.0)  # worse than chance counts as chance
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
    make_attack(match, 1.0, accuracy=1.0)
    auth.login()
    rows = {r["team_name"]: r for r in board(client)["rows"]}
    assert (
        rows["cha-di"]["leakage"] == 1.0 and rows["cha-di"]["defence_score"] == 0.0 and rows["cha-di"]["score"] == 0.0
    )
    assert rows["al-bo"]["attack_score"] == 1.0 and rows["cha-di"]["attack_score"] == 0.0
    assert rows["al-bo"]["score"] is None and any("Overheads" in m for m in rows["al-bo"]["messages"])


def test_the_overall_board_adds_tradeoff_round_scores(tradeoff, client, auth, alice):
    a, b = alice.team, make_team("cha-di")
    defence_with(a, {"bandwidth_total": 0.0, "time": 0.0}, acc(0.8))
    defence_with(b, {"bandwidth_total": 0.0, "time": 0.0}, acc(0.4))
    make_attack(make_round(1, [(a, b), (b, a)])[0], 0.9, accuracy=acc(0.6))  # cha-di never attacks: its score 0
    make_attack(make_round(2, [(a, b), (b, a)])[0], 0.95, accuracy=acc(0.8))
    auth.login()
    overall = client.get("/api/v1/leaderboard/overall").get_json()
    assert overall["scoring"] == "tradeoff"
    rows = {r["team_name"]: r for r in overall["rows"]}
    # al-bo: attack 0.6 then 0.8; its defence leaks the baseline's 0.8 both rounds: 0.2 + 0.2.
    assert rows["al-bo"]["score"] == pytest.approx(0.6 + 0.2 + 0.8 + 0.2)
    assert rows["cha-di"]["score"] == pytest.approx((1 - 0.6) + (1 - 0.8))


def test_switching_the_mode_recomputes_the_cached_boards(app, client, auth, alice):
    app.config.update(LEADERBOARD_CACHE_TIME=60, REDIS_KEY_PREFIX=f"srs-test-{uuid.uuid4().hex}:", NB_CLASSES=100)
    defence_with(alice.team, {"bandwidth_total": 0.0, "time": 0.0}, acc(0.5), baseline_auc=0.75)
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
    defence_with(a, None, 0.6, utility=5.0, baseline_auc=0.95)
    defence_with(b, None, 0.3, utility=6.0, baseline_auc=0.7)
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


def test_flask_rescore_shows_what_the_formula_change_moved_on_the_board(tradeoff, runner):
    """A FRONT-like defence (12.3 % accuracy, yet ROC-AUC 0.81) and a padded one (75 %, ROC-AUC 0.98): the ROC-AUC
    form called the dummies 62 % leaky; accuracy shows the privacy they buy and moves that team to the top."""
    front, padded, attacker = make_team("front"), make_team("padded"), make_team("zeta")
    defence_with(front, {"bandwidth_total": 60.0, "time": 0.0})
    defence_with(padded, {"bandwidth_total": 20.0, "time": 0.0})
    defence_with(attacker, {"bandwidth_total": 0.0, "time": 0.0}, acc(0.9))
    on_front, on_padded, _ = make_round(1, [(attacker, front), (attacker, padded), (front, attacker)])
    make_attack(on_front, 0.811, accuracy=0.123)
    make_attack(on_padded, 0.984, accuracy=0.75)
    result = runner.invoke(args=["rescore", "--round", "1"])
    assert "Round 1 board (tradeoff): leakage and attack scores are now accuracy advantages" in result.output
    lines = {line.split(":")[0].strip(): line for line in result.output.splitlines() if line.startswith("  ")}
    # front: (1 − 0.622) / 1.6 = 0.236 → (1 − 0.114) / 1.6 = 0.554, above the attacker's 0.1 + 0.43 = 0.53.
    assert "rank 2 -> 1, round score 0.236 -> 0.554, leakage 0.622 -> 0.114" in lines["front"]
    assert "rank 1 -> 2" in lines["zeta"]
    assert "rank 3 -> 3" in lines["padded"] and "leakage 0.968 -> 0.747" in lines["padded"]
    assert "2 of 3 teams changed rank" in result.output


def test_statistical_ties_are_marked_on_the_page_and_in_the_api(app, client, auth, alice):
    """Original mode: two attackers whose accuracy intervals overlap are tied; a clear gap is not."""
    a, b, c = alice.team, make_team("bea-bo"), make_team("cy-cy")
    for team in (a, b, c):
        defence_with(team, {"bandwidth_total": 0.0, "time": 0.0}, utility=5.0)
    m_a, m_b, m_c = make_round(1, [(a, b), (b, c), (c, a)])
    for match, auc, width in ((m_a, 0.95, 0.02), (m_b, 0.94, 0.02), (m_c, 0.80, 0.02)):
        attack = make_attack(match, auc)
        attack.intervals = {"roc_auc": {"estimate": auc, "low": auc - width, "high": auc + width}}
        attack.public_scores = {**attack.public_scores, "intervals": attack.intervals}
    db.session.commit()
    auth.login()
    rows = board(client)["rows"]
    assert [(r["team_name"], r["tied_with_above"]) for r in rows] == [
        ("al-bo", False),
        ("bea-bo", True),  # 47.0 ± 1.0 overlaps 47.5 ± 1.0
        ("cy-cy", False),  # 40.0 ± 1.0 is clear of 47.0 ± 1.0
    ]
    assert rows[1]["score_pm"] == pytest.approx(5.0 * 10 * 0.02)
    page = client.get("/leaderboard/")
    tied = [r for r in re.findall(r"<tr data-team-id.*?</tr>", page.get_data(as_text=True), re.S) if "tied" in r]
    assert len(tied) == 1 and "bea-bo" in tied[0] and "≈ tied with the team above" in tied[0]
    assert "the two scores' intervals overlap" in text(page)
