"""The figures students read to improve, on the pages that may show them and nowhere else: where a defence leaks
(the baseline attack's heat map, then the real attackers' once the round closed), an attack's ROC curve and top-k
accuracy on the captures its shown score counts, and a team's path over the rounds; the same figures in the API."""

from __future__ import annotations

import copy
import html
import io
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import roc_auc_score

from app.extensions import db
from app.models import Attack, BaselineRun, Defence, Submission, SubmissionStatus
from app.services import attacks, baseline, figures, maintenance
from app.storage import get_storage
from tests import factories
from tests.web import test_public_scores as public
from tests.web.test_baseline import _synthetic_sets, succeed, with_run

# alice's team attacks bob's in an open round 1, scored by the real scorer (see test_public_scores).
scored, sent, right = public.scored, public.sent, public.right
NB_CAPTURES = public.NB_CAPTURES

SVG = "{http://www.w3.org/2000/svg}"


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def svg(page: str, ident: str) -> ET.Element:
    """The inline SVG of that id on a page, parsed (it must be well-formed)."""
    found = re.search(rf'<svg [^>]*id="{ident}".*?</svg>', page, re.S)
    assert found, f"no SVG {ident} on the page"
    return ET.fromstring(found.group(0))


def login(client, name: str) -> None:
    client.post("/logout")
    client.post("/login", data={"username": name, "password": "secret-pw"})


def close_round(client, scored) -> None:
    response = client.post("/api/v1/rounds/1/close", headers=factories.api_token(scored["admin"]))
    assert response.status_code == 200


def bob_defence(scored) -> Defence:
    return db.session.scalar(sa.select(Defence).where(Defence.team_id == scored["bob"].team_id))


def _public_truth():
    """alice's probabilities on bob's 30 captures of cells 1..10 (the first 10 public), and the true cells as
    one-hot rows (see test_public_scores)."""
    cells = np.tile(np.arange(1, 11), 3)
    truth = np.zeros((NB_CAPTURES, 100), dtype=bool)
    truth[np.arange(NB_CAPTURES), cells - 1] = True
    return public.attack_proba(cells), truth


# --- where a defence leaks: the baseline attack -------------------------------------------------------------


def test_the_baseline_keeps_per_cell_counts_and_the_defence_page_draws_them(client, auth, alice, tmp_path):
    defence = factories.make_defence(alice.team)
    _synthetic_sets(tmp_path, defence)  # five cells of three test captures, told apart perfectly
    with_run(defence)
    baseline.run(defence.id)
    db.session.expire_all()
    run = db.session.scalar(sa.select(BaselineRun).where(BaselineRun.defence_id == defence.id))
    assert run.details["per_cell"]["captures"][:6] == [3, 3, 3, 3, 3, 0]
    assert run.details["per_cell"]["recognised"][:5] == [3, 3, 3, 3, 3]

    auth.login()
    page = client.get(f"/submissions/{defence.submission_id}").get_data(as_text=True)
    picture = svg(page, f"leak-{defence.submission_id}")
    assert picture.get("role") == "img" and "baseline attack" in picture.findtext(f"{SVG}title")
    assert "10 by 10 grid" in picture.findtext(f"{SVG}desc")
    words = text(page)
    assert "Most exposed cells: cell 1 (100 %, 3 of 3 captures), cell 2 (100 %, 3 of 3 captures)" in words
    # The table beside it: every cell with its number, recall and counts.
    assert '<td><span class="cell-id">27</span><br>–<small> (0/0)</small></td>' in page
    assert '<td><span class="cell-id">3</span><br>100<small> (3/3)</small></td>' in page
    assert 'data-source="attackers"' not in page and "when a round in which this defence is attacked closes" in words

    answer = client.get(f"/api/v1/submissions/{defence.submission_id}").get_json()
    leak = answer["leakage_by_cell"]
    assert leak["grid"] == {"rows": 10, "columns": 10, "numbering": "row by row from the top left, from 1"}
    assert leak["baseline"]["captures"][:6] == [3, 3, 3, 3, 3, 0] and leak["baseline"]["recall"][5] is None
    assert leak["baseline"]["most_exposed"] == [1, 2, 3, 4, 5] and leak["attackers"] == []
    assert answer["curves"] is None
    listed = client.get("/api/v1/submissions").get_json()["items"][0]
    assert "leakage_by_cell" not in listed  # the list stays light: the figures are in the one-submission answer


@pytest.mark.parametrize("state", ["older run", "running", "none"])
def test_without_per_cell_figures_the_page_says_not_available_yet(client, auth, alice, state):
    defence = factories.make_defence(alice.team)
    if state == "older run":
        succeed(with_run(defence))  # recorded before per-cell counts were kept
    elif state == "running":
        with_run(defence, SubmissionStatus.RUNNING)
    auth.login()
    response = client.get(f"/submissions/{defence.submission_id}")
    assert response.status_code == 200
    words = text(response.get_data(as_text=True))
    assert "Per-cell figures not available yet" in words and "Most exposed" not in words
    answer = client.get(f"/api/v1/submissions/{defence.submission_id}").get_json()["leakage_by_cell"]
    assert answer["baseline"] is None and "not available yet" in answer["baseline_note"]


def test_another_team_never_sees_a_defences_heat_map(client, auth, alice):
    other = factories.make_defence(factories.make_team("cha-di"))
    auth.login()
    assert client.get(f"/submissions/{other.submission_id}").status_code == 404
    assert client.get(f"/api/v1/submissions/{other.submission_id}").status_code == 404


# --- an attack's curves, and the real attackers' heat map -------------------------------------------------------


def test_the_attacker_sees_the_curves_on_the_public_subset_then_on_the_private_one(client, scored):
    proba, truth = _public_truth()
    sid = scored["id"]
    login(client, "alice")
    page = client.get(f"/submissions/{sid}").get_data(as_text=True)
    roc, topk = svg(page, f"roc-{sid}"), svg(page, f"topk-{sid}")
    assert roc.get("role") == "img" and "micro-averaged" in roc.findtext(f"{SVG}title")
    assert "on the public subset (10 captures)" in roc.findtext(f"{SVG}desc")
    assert "chance (AUC 0.5)" in [t.text for t in roc.iter(f"{SVG}text")]
    public_auc = roc_auc_score(truth[:10].ravel(), proba[:10].ravel())
    assert f"bob-team: micro AUC {public_auc:.3f}" in [t.text for t in roc.iter(f"{SVG}text")]
    assert "top-1 0.40" in topk.findtext(f"{SVG}desc")
    words = text(page)
    assert "TPR at FPR 0.01" in words and "k = 10" in words

    curves = client.get(f"/api/v1/submissions/{sid}", headers=scored["headers"]).get_json()["curves"]
    (bob,) = curves
    assert bob["team_id"] == scored["bob"].team_id and bob["subset"] == "public" and bob["nb_captures"] == 10
    assert bob["top_k"][0] == pytest.approx(0.4) and bob["roc"]["micro_auc"] == pytest.approx(public_auc)
    assert len(bob["top_k"]) == 10 and bob["problem"] is None

    close_round(client, scored)
    final = client.get(f"/api/v1/submissions/{sid}", headers=scored["headers"]).get_json()["curves"][0]
    assert final["subset"] == "private" and final["nb_captures"] == 20 and final["top_k"][0] == pytest.approx(0.75)
    assert final["roc"]["micro_auc"] == pytest.approx(roc_auc_score(truth[10:].ravel(), proba[10:].ravel()))
    page = client.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "on the private subset (20 captures)" in svg(page, f"roc-{sid}").findtext(f"{SVG}desc")


def test_an_attack_without_public_scores_shows_no_curve_until_the_round_closes(client, scored):
    submission = db.session.get(Submission, scored["id"])
    results = copy.deepcopy(submission.results)
    for row in results["scores"]:
        row.pop("subset")  # recorded before public subsets: final scores, hidden while the round is open
    submission.results = results
    db.session.scalar(sa.select(Attack).where(Attack.submission_id == scored["id"])).public_scores = None
    db.session.commit()
    login(client, "alice")
    page = client.get(f"/submissions/{scored['id']}").get_data(as_text=True)
    assert f'id="roc-{scored["id"]}"' not in page and 'id="curves"' not in page
    answer = client.get(f"/api/v1/submissions/{scored['id']}", headers=scored["headers"]).get_json()
    assert answer["curves"] == []
    close_round(client, scored)
    (final,) = client.get(f"/api/v1/submissions/{scored['id']}", headers=scored["headers"]).get_json()["curves"]
    assert final["subset"] == "private" and final["top_k"][0] == pytest.approx(0.75)


def test_the_defender_sees_the_real_attackers_only_once_the_round_closed(client, scored):
    defence = bob_defence(scored)
    login(client, "bob")
    page = client.get(f"/submissions/{defence.submission_id}").get_data(as_text=True)
    assert 'data-source="attackers"' not in page  # the round is open: the attackers' figures would leak labels
    api = client.get(f"/api/v1/submissions/{defence.submission_id}", headers=factories.api_token(scored["bob"]))
    assert api.get_json()["leakage_by_cell"]["attackers"] == []
    # Nor can bob read alice's attack and its curves.
    assert client.get(f"/submissions/{scored['id']}").status_code == 404

    close_round(client, scored)
    page = client.get(f"/submissions/{defence.submission_id}").get_data(as_text=True)
    picture = svg(page, f"leak-{defence.submission_id}-r1")
    assert "Round 1" in picture.findtext(f"{SVG}title")
    words = text(page)
    # On the private captures (10-29): cells 1-5 twice right, cells 6-10 once of twice.
    assert "Most exposed cells: cell 1 (100 %, 2 of 2 captures)" in words
    assert "1 counted attack(s) of round 1, pooled, each on the captures its final score counts (the private" in words
    (attackers,) = client.get(
        f"/api/v1/submissions/{defence.submission_id}", headers=factories.api_token(scored["bob"])
    ).get_json()["leakage_by_cell"]["attackers"]
    assert attackers["round"] == 1 and attackers["subset"] == "private" and attackers["nb_attackers"] == 1
    assert attackers["captures"][:11] == [2] * 10 + [0]
    assert attackers["recognised"][:10] == [2] * 5 + [1] * 5 and attackers["most_exposed"] == [1, 2, 3, 4, 5]


# --- a team's path ----------------------------------------------------------------------------------------------


def test_the_team_page_draws_the_path_over_the_rounds_with_the_leaderboards_figures(client, scored):
    login(client, "alice")
    page = client.get("/team/bob-team").get_data(as_text=True)  # another team's page: what the leaderboard shows
    team_id = scored["bob"].team_id
    score_chart = svg(page, f"path-{team_id}-score")
    assert score_chart.get("role") == "img" and "round score and rank" in score_chart.findtext(f"{SVG}title")
    assert "round 1: score" in score_chart.findtext(f"{SVG}desc")
    svg(page, f"path-{team_id}-parts")
    board = client.get("/api/v1/leaderboard?round=1", headers=scored["headers"]).get_json()
    row = next(r for r in board["rows"] if r["team_id"] == team_id)
    words = text(page)
    assert f"{row['rank']} of {len(board['rows'])}" in words and "public subset (round open)" in words
    assert f"{row['score']:.3f}" in words

    close_round(client, scored)
    words = text(client.get("/team/bob-team").get_data(as_text=True))
    board = client.get("/api/v1/leaderboard?round=1", headers=scored["headers"]).get_json()
    row = next(r for r in board["rows"] if r["team_id"] == team_id)
    assert f"{row['score']:.3f}" in words and "public subset (round open)" not in words


def test_a_team_page_before_any_round_has_no_path(client, auth, alice):
    auth.login()
    page = client.get("/team/al-bo").get_data(as_text=True)
    assert "Path over the rounds" not in page


def test_the_path_takes_each_modes_parts_and_intervals():
    team = SimpleNamespace(id=7, name="seven")
    row = {"team_id": 7, "rank": 2, "score": 0.5, "score_pm": 0.05}
    boards = {
        1: {
            "generated": True,
            "scoring": "original",
            "public_subset": False,
            "rows": [{**row, "attack_performance": 9.0, "attack_performance_pm": 0.1, "utility_score": 3.0}, {}],
        },
        2: {
            "generated": True,
            "scoring": "tradeoff",
            "public_subset": True,
            "rows": [
                {
                    **row,
                    "attack_score": 0.6,
                    "attack_score_pm": 0.04,
                    "defence_score": 0.3,
                    "leakage_pm": 0.1,
                    "cost_factor": 0.5,
                }
            ],
        },  # fmt: skip
        3: {"generated": False, "scoring": "tradeoff", "rows": []},  # a preview: no line
    }
    first, second = figures.team_path(team, boards)
    assert (first["attack"], first["attack_pm"], first["defence"], first["defence_pm"]) == (9.0, 0.1, 3.0, 0.0)
    assert first["rank"] == 2 and first["teams"] == 2 and not first["public_subset"]
    # The defence score is (1 − leakage) × cost factor: its interval is the leakage's, scaled.
    assert (second["attack"], second["defence"]) == (0.6, 0.3) and second["defence_pm"] == pytest.approx(0.05)
    assert second["public_subset"]


def test_a_stored_file_that_cannot_be_read_is_named_not_a_server_error(client, scored):
    close_round(client, scored)
    attack = db.session.get(Submission, scored["id"])
    get_storage().delete(attack.file_key)
    defence = bob_defence(scored)
    login(client, "bob")
    response = client.get(f"/submissions/{defence.submission_id}")
    assert response.status_code == 200
    words = text(response.get_data(as_text=True))
    assert "al-bo's attack could not be read" in words and "No attack on this defence in round 1 could be read" in words
    headers = factories.api_token(scored["bob"])
    (attackers,) = client.get(f"/api/v1/submissions/{defence.submission_id}", headers=headers).get_json()[
        "leakage_by_cell"
    ]["attackers"]
    assert attackers["captures"] is None and attackers["most_exposed"] == []
    assert attackers["problems"] == ["al-bo's attack could not be read"]
    login(client, "alice")
    answer = client.get(f"/api/v1/submissions/{scored['id']}", headers=scored["headers"]).get_json()["curves"]
    assert answer[0]["problem"] == "the stored files could not be read" and "roc" not in answer[0]
    assert "the curves could not be drawn" in text(client.get(f"/submissions/{scored['id']}").get_data(as_text=True))


def test_a_round_played_again_after_flushing_the_matches_draws_its_new_attacks(client, scored):
    """`flask flush-matches` deletes the attacks and their kept figures: the next round 1's attack (SQLite numbers
    it as the deleted one) shows its own curves, not the kept ones of the attack it replaces."""
    login(client, "alice")
    sid = scored["id"]
    page = client.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "top-1 0.40" in svg(page, f"topk-{sid}").findtext(f"{SVG}desc")

    number = db.session.scalar(sa.select(Attack.id).where(Attack.submission_id == sid))
    maintenance.flush_matches()
    alice, bob = scored["alice"], scored["bob"]
    factories.make_round(1, [(alice.team, bob.team), (bob.team, alice.team)])
    with get_storage().open(bob_defence(scored).verification_key) as stream:
        verification = pd.read_csv(io.BytesIO(stream.read()), compression="zip")
    every_capture = np.ones(NB_CAPTURES, dtype=bool)
    upload = {"file": (io.BytesIO(public._attack_zip(bob.team_id, verification, every_capture)), "attack.zip")}
    answer = client.post("/api/v1/attacks", headers=scored["headers"], data=upload)
    assert answer.status_code == 202, answer.get_json()
    again = answer.get_json()["submission_id"]
    attacks.run_evaluation(again)
    db.session.expire_all()
    if db.engine.name == "sqlite":  # the new attack has the number of the deleted one
        assert db.session.scalar(sa.select(Attack.id).where(Attack.submission_id == again)) == number

    page = client.get(f"/submissions/{again}").get_data(as_text=True)
    assert "top-1 1.00" in svg(page, f"topk-{again}").findtext(f"{SVG}desc")
    (curves,) = client.get(f"/api/v1/submissions/{again}", headers=scored["headers"]).get_json()["curves"]
    assert curves["top_k"][0] == pytest.approx(1.0) and curves["roc"]["micro_auc"] == pytest.approx(1.0)


def test_staff_reach_an_attacks_figures_from_the_dashboard(client, scored):
    sid = scored["id"]
    login(client, "admin")
    dashboard = client.get(f"/admin/submissions/{sid}").get_data(as_text=True)
    link = re.search(r'<a id="team-view" href="([^"]+)"', dashboard)
    assert link and link.group(1) == f"/submissions/{sid}"
    page = client.get(link.group(1)).get_data(as_text=True)
    # the round is open: the figures are those its team sees, on the public subset
    assert "on the public subset (10 captures)" in svg(page, f"roc-{sid}").findtext(f"{SVG}desc")
    assert "top-1 0.40" in svg(page, f"topk-{sid}").findtext(f"{SVG}desc")
