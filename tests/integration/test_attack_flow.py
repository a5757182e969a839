"""A whole round with a live worker: two defences, round 1, downloads, the example attack, scores."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pandas as pd
import pytest

from app.models import Phase
from app.services import competition
from tests import factories
from tests.conftest import ROOT, SAMPLE_DEFENCE
from tests.integration.helpers import logged_in, uniform_attack_csv, upload, wait_finished

pytestmark = pytest.mark.integration
FINGERPRINTING = ROOT / "attack_defence_test_scripts" / "fingerprinting.py"


def _submission_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


@pytest.fixture
def round_one(stack):
    """Teams al-bo and cha-di with the sample as defence, round 1 generated, phase Attack."""
    alice = factories.make_user("alice", team="al-bo")
    carol = factories.make_user("carol", team="cha-di")
    factories.make_user("boss", admin=True)
    competition.update_state(phase=Phase.DEFENCE)
    clients = {"alice": logged_in(stack.app, "alice"), "carol": logged_in(stack.app, "carol")}
    for client in clients.values():
        assert wait_finished(client, _submission_id(upload(client, "/defence/", SAMPLE_DEFENCE)))["status"] == (
            "succeeded"
        )
    admin = logged_in(stack.app, "boss")
    page = admin.get("/generate_matches/").get_data(as_text=True)
    assert "al-bo" in page and "cha-di" in page
    response = admin.post("/generate_matches/", data={"round": 1})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert admin.post("/generate_matches/", data={"round": 1}).status_code == 409  # never twice
    admin.post("/set_phase/", data={"phase": "Attack"})
    return {"clients": clients, "alice": alice, "carol": carol, "admin": admin}


def _download(client) -> zipfile.ZipFile:
    response = client.get("/attack/?download=1")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def test_example_attack_scores_well_and_uniform_scores_half(stack, round_one, tmp_path):
    alice, carol = round_one["clients"]["alice"], round_one["clients"]["carol"]
    target = round_one["carol"].team_id
    sets = _download(alice)
    assert sorted(sets.namelist()) == [f"team_{target}_test.csv.zip", f"team_{target}_train.csv.zip"]
    sets.extractall(tmp_path)
    subprocess.run([sys.executable, str(FINGERPRINTING), str(target)], cwd=tmp_path, check=True, timeout=300)
    result = wait_finished(alice, _submission_id(upload(alice, "/attack/", tmp_path / "my_classification.csv.zip")))
    assert result["status"] == "succeeded", result["error"]
    (score,) = result["results"]["scores"]
    assert score["team_id"] == target and score["roc_auc"] > 0.9
    stack.extra["example_attack_auc"] = score["roc_auc"]
    print(f"example attack through the platform: ROC-AUC {score['roc_auc']:.4f}, accuracy {score['accuracy']:.3f}")

    # carol answers with uniform probabilities: exactly chance
    other = round_one["alice"].team_id
    test = pd.read_csv(io.BytesIO(_download(carol).read(f"team_{other}_test.csv.zip")), compression="zip")
    uniform = uniform_attack_csv(other, test["capture_id"].unique())
    headers = factories.api_token(round_one["carol"])
    api = stack.app.test_client()

    def carol_row():
        rows = api.get("/api/v1/leaderboard?round=1", headers=headers).get_json()["rows"]
        return next(r for r in rows if r["team_name"] == "cha-di")

    assert carol_row()["attack_performance"] is None  # now cached for LEADERBOARD_CACHE_TIME
    result = wait_finished(carol, _submission_id(upload(carol, "/attack/", data=uniform)))
    assert result["status"] == "succeeded", result["error"]
    assert result["results"]["scores"][0]["roc_auc"] == pytest.approx(0.5, abs=1e-12)
    # recording the result cleared the cache: the leaderboard shows it at once, 10 x 0.5
    assert carol_row()["attack_performance"] == pytest.approx(5.0)

    # the attacker sees its score on its team page; the defender sees how well it was attacked
    assert f"{score['roc_auc']:.3f}" in alice.get("/team/al-bo").get_data(as_text=True)
    assert f"{score['roc_auc']:.3f}" in carol.get("/team/cha-di").get_data(as_text=True)


def test_a_defence_uploaded_after_generation_changes_nothing_in_the_round(stack, round_one):
    alice, carol = round_one["clients"]["alice"], round_one["clients"]["carol"]
    before = alice.get("/attack/?download=1").get_data()
    competition.update_state(phase=Phase.BOTH)
    assert wait_finished(carol, _submission_id(upload(carol, "/defence/", SAMPLE_DEFENCE)))["status"] == "succeeded"
    assert alice.get("/attack/?download=1").get_data() == before
    # the capture ids of the pinned test set are still the ones scored
    target = round_one["carol"].team_id
    test = pd.read_csv(
        io.BytesIO(zipfile.ZipFile(io.BytesIO(before)).read(f"team_{target}_test.csv.zip")), compression="zip"
    )
    uniform = uniform_attack_csv(target, test["capture_id"].unique())
    result = wait_finished(alice, _submission_id(upload(alice, "/attack/", data=uniform)))
    assert result["status"] == "succeeded", result["error"]


def test_hostile_attack_uploads_fail_with_a_message(stack, round_one):
    alice = round_one["clients"]["alice"]
    not_mine = round_one["alice"].team_id  # a team that is not alice's target
    result = wait_finished(alice, _submission_id(upload(alice, "/attack/", data=uniform_attack_csv(not_mine, [1]))))
    assert result["status"] == "failed"
    assert str(not_mine) in result["error"] + str(result["results"])
    response = upload(alice, "/attack/", data=b"not a zip")
    assert response.status_code == 422


def test_attack_pages_and_api_are_gated_by_phase(stack, round_one):
    alice = round_one["clients"]["alice"]
    headers = factories.api_token(round_one["alice"])
    client = stack.app.test_client()
    assert client.get("/api/v1/attack/sets", headers=headers).status_code == 200
    competition.update_state(phase=Phase.DEFENCE)
    assert alice.get("/attack/").status_code == 409
    assert alice.get("/attack/?download=1").status_code == 409
    assert upload(alice, "/attack/", data=b"x").status_code == 409
    response = client.get("/api/v1/attack/sets", headers=headers)
    assert response.status_code == 409 and response.get_json()["error"] == "phase_closed"
    response = client.post("/api/v1/attacks", headers=headers, data={"file": (io.BytesIO(b"x"), "a.zip")})
    assert response.status_code == 409
    matches = client.get("/api/v1/matches?round=1", headers=headers).get_json()
    assert {(m["attacker_team_id"], m["defender_team_id"]) for m in matches} == {
        (round_one["alice"].team_id, round_one["carol"].team_id),
        (round_one["carol"].team_id, round_one["alice"].team_id),
    }
