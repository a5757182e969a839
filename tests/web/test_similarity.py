"""The staff's similarity view through the API, the dashboard and the CSV export: a copied attack and a defence
uploaded by two teams are listed with their evidence; an honest pair is not; students cannot see it."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from app.evaluation.attack import proba_columns
from app.extensions import db
from app.models import Defence, Submission, SubmissionStatus
from app.services import attacks, defences, maintenance, similarity
from tests import factories
from tests.evaluation.test_defence import capture_rows
from tests.web.test_round_sets import SMALL, _defence_zip, _generate, _labels, _teams

NB = SMALL["NB_CLASSES"]


def _other_defence_zip() -> bytes:
    """A defence of the same shape as _defence_zip whose captures all have other packet sizes."""
    rows = [row for cell in range(1, 5) for rep in range(51, 57) for row in capture_rows(cell, rep)]
    text = "cell_id,rep,direction_size,timestamp\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("defence.csv", text)
    return buffer.getvalue()


def _upload(client, user, target_team_id: int, capture_ids, proba) -> None:
    frame = pd.DataFrame(proba, columns=proba_columns(NB))
    frame.insert(0, "capture_id", np.asarray(capture_ids))
    frame.insert(0, "team_id", target_team_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("attack.csv", frame.to_csv(index=False))
    body = {"file": (io.BytesIO(buffer.getvalue()), "a.zip")}
    response = client.post("/api/v1/attacks", headers=factories.api_token(user), data=body)
    assert response.status_code == 202, response.get_json()
    attacks.run_evaluation(response.get_json()["submission_id"])


def _guesses(cells: np.ndarray, seed: int, right: float) -> np.ndarray:
    """Probabilities that put 0.7 on the true cell for a share `right` of captures, on a random wrong one else."""
    rng = np.random.default_rng(seed)
    guess = np.where(rng.random(len(cells)) < right, cells - 1, (cells - 1 + rng.integers(1, NB, len(cells))) % NB)
    proba = rng.dirichlet(np.ones(NB), len(cells)) * 0.3
    proba[np.arange(len(cells)), guess] += 0.7
    return proba


@pytest.fixture
def planted(make_app):
    """alice, bob and carol each attack both others in round 1. alice and bob upload the same defence file, carol
    her own. On bob, carol copies alice's probabilities (moved onto her own capture ids); on alice, bob and carol
    attack independently."""
    app = make_app(MATCHES_PER_TEAM=2, **SMALL)
    client, users, admin = _teams(app, ["alice", "bob"], _defence_zip())
    users["carol"] = factories.make_user("carol", team="carol-team")
    response = client.post(
        "/api/v1/defences",
        headers=factories.api_token(users["carol"]),
        data={"file": (io.BytesIO(_other_defence_zip()), "d.zip")},
    )
    defences.run_evaluation(response.get_json()["submission_id"])
    _generate(client, admin, 1)
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    for attacker in (alice, carol):
        client.get("/api/v1/attack/sets", headers=factories.api_token(attacker))
    client.get("/api/v1/attack/sets", headers=factories.api_token(bob))

    on_bob_alice, on_bob_carol = _labels(alice, bob, 1), _labels(carol, bob, 1)
    original = _guesses(on_bob_alice.cell_id.to_numpy(), seed=1, right=0.5)
    _upload(client, alice, bob.team_id, on_bob_alice.capture_id, original)
    by_pool = dict(zip(on_bob_alice.pool_capture_id, original, strict=True))
    copied = np.array([by_pool[p] for p in on_bob_carol.pool_capture_id])
    _upload(client, carol, bob.team_id, on_bob_carol.capture_id, copied)

    on_alice_bob, on_alice_carol = _labels(bob, alice, 1), _labels(carol, alice, 1)
    _upload(client, bob, alice.team_id, on_alice_bob.capture_id, _guesses(on_alice_bob.cell_id.to_numpy(), 2, 0.7))
    _upload(
        client, carol, alice.team_id, on_alice_carol.capture_id, _guesses(on_alice_carol.cell_id.to_numpy(), 3, 0.7)
    )
    db.session.expire_all()
    assert all(s.status is SubmissionStatus.SUCCEEDED for s in db.session.scalars(sa.select(Submission)))
    return {"client": client, "admin": admin, **users}


def test_staff_see_the_copied_attack_and_the_shared_defence_most_suspicious_first(planted):
    response = planted["client"].get("/api/v1/admin/similarity?round=1", headers=planted["admin"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    pairs = [(p["kind"], {p["team_a"], p["team_b"]}, p.get("target")) for p in body["pairs"]]
    print("flagged:", [(p["kind"], p["team_a"], p["team_b"], p["figures"], p["thresholds"]) for p in body["pairs"]])
    assert pairs == [
        ("defence", {"alice-team", "bob-team"}, None),
        ("attack", {"alice-team", "carol-team"}, "bob-team"),
    ]
    shared, copy = body["pairs"]
    assert shared["thresholds"][0] == "identical_file" and shared["figures"]["shared_share"] == 1.0
    assert copy["figures"]["correlation"] == pytest.approx(1.0) and copy["figures"]["same_top_guess"] == 1.0
    assert not copy["figures"]["identical_file"]  # different capture ids: the bytes differ
    assert copy["threshold_text"] and "example attack script" in body["note"]
    assert body["compared"] == 5  # two attack pairs (one per contested target) and three defence pairs


def test_the_honest_pair_is_compared_but_not_flagged(planted):
    body = planted["client"].get("/api/v1/admin/similarity?round=1&all=1", headers=planted["admin"]).get_json()
    honest = [p for p in body["pairs"] if p["kind"] == "attack" and p["target"] == "alice-team"]
    assert len(honest) == 1 and honest[0]["thresholds"] == [] and not honest[0]["suspicious"]
    assert honest[0]["figures"]["correlation"] < 0.98
    assert len(body["pairs"]) == 5 and body["flagged"] == 2


def test_students_and_strangers_are_refused(planted):
    client = planted["client"]
    assert client.get("/api/v1/admin/similarity?round=1").status_code == 401
    student = client.get("/api/v1/admin/similarity?round=1", headers=factories.api_token(planted["alice"]))
    assert student.status_code == 403
    assert client.get("/api/v1/admin/similarity?round=7", headers=planted["admin"]).status_code == 404
    assert client.get("/api/v1/admin/similarity?round=one", headers=planted["admin"]).status_code == 400
    client.post("/login", data={"username": "alice", "password": "secret-pw"})
    assert client.get("/admin/similarity/?round=1").status_code == 403
    assert client.get("/admin/exports/similarity.csv?round=1").status_code == 403


def test_the_dashboard_tab_lists_the_evidence_with_the_note(planted):
    client = planted["client"]
    client.post("/login", data={"username": "admin", "password": "secret-pw"})
    assert 'href="/admin/similarity/"' in client.get("/admin/").get_data(as_text=True)
    page = client.get("/admin/similarity/?round=1").get_data(as_text=True)
    assert "example attack script unchanged" in page
    rows = page.split('class="similarity-row"')[1:]
    assert len(rows) == 2
    assert "alice-team &amp; bob-team" in rows[0] and "byte-identical uploads" in rows[0]
    assert "alice-team &amp; carol-team" in rows[1] and "bob-team" in rows[1] and "1.000" in rows[1]
    assert client.get("/admin/similarity/?round=4").status_code == 404


def test_the_csv_export_lists_the_pairs(planted):
    client = planted["client"]
    client.post("/login", data={"username": "admin", "password": "secret-pw"})
    assert 'href="/admin/exports/similarity.csv?round=1"' in client.get("/admin/exports/").get_data(as_text=True)
    response = client.get("/admin/exports/similarity.csv?round=1")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["kind"], r["target"]) for r in rows] == [("defence", ""), ("attack", "bob-team")]
    assert rows[1]["thresholds"].startswith("same_top_guesses") or "correlated_probabilities" in rows[1]["thresholds"]
    everything = list(csv.DictReader(io.StringIO(client.get("/admin/exports/similarity.csv").get_data(as_text=True))))
    assert everything == rows


def test_a_view_reads_traces_within_its_budget_and_still_compares_uploads(planted, monkeypatch):
    monkeypatch.setattr(similarity, "DEFENCE_READ_BUDGET_SECONDS", -1)  # nothing read before: none is read now
    body = planted["client"].get("/api/v1/admin/similarity?round=1", headers=planted["admin"]).get_json()
    shared = [p for p in body["pairs"] if p["kind"] == "defence"]
    assert len(shared) == 1 and shared[0]["thresholds"] == ["identical_file"]
    assert shared[0]["figures"]["shared_traces"] is None
    assert len(body["skipped"]) == 3 and all("reload in a moment" in line for line in body["skipped"])
    planted["client"].post("/login", data={"username": "admin", "password": "secret-pw"})
    page = planted["client"].get("/admin/similarity/?round=1").get_data(as_text=True)
    assert "not read yet" in page and "reload in a moment" in page


def test_before_round_1_the_tab_says_there_is_nothing_to_compare(client, auth, admin):
    auth.login("admin")
    page = client.get("/admin/similarity/")
    assert page.status_code == 200 and "No round was generated yet" in page.get_data(as_text=True)
    missing = client.get("/api/v1/admin/similarity", headers=factories.api_token(admin))
    assert missing.status_code == 404 and "no round has been generated yet" in missing.get_json()["message"]


def test_a_stored_file_gone_missing_is_named_not_a_server_error(planted):
    """An attack upload deleted from storage: the view says whose file it is and compares the rest."""
    from app.storage import get_storage

    carol_attack = db.session.scalars(
        sa.select(Submission).where(Submission.team_id == planted["carol"].team_id, Submission.kind == "attack")
    ).first()
    get_storage().delete(carol_attack.file_key)
    response = planted["client"].get("/api/v1/admin/similarity?round=1", headers=planted["admin"])
    assert response.status_code == 200
    body = response.get_json()
    assert any(s.startswith("carol-team's attack on") and "unreadable" in s for s in body["skipped"])
    assert [p["kind"] for p in body["pairs"]] == ["defence"]  # the copy cannot be compared without carol's file


def test_a_flushed_database_takes_the_traces_kept_for_the_view_with_it(make_app):
    """`flask flush-db` deletes the traces the view read and kept: the next competition's defences, which SQLite
    numbers as the deleted ones, are compared on their own traces, not on those kept for their numbers."""
    app = make_app(MATCHES_PER_TEAM=1, **SMALL)
    client, _, admin = _teams(app, ["alice", "bob"], _defence_zip())  # the same file twice
    _generate(client, admin, 1)
    (pair,) = client.get("/api/v1/admin/similarity?round=1", headers=admin).get_json()["pairs"]
    assert pair["kind"] == "defence" and pair["figures"]["shared_share"] == 1.0
    numbers = sorted(db.session.scalars(sa.select(Defence.id)))

    maintenance.flush_db()
    db.session.remove()  # as after `flask flush-db`: a new session
    client, _, admin = _teams(app, ["alice"], _defence_zip())
    bob = factories.make_user("bob", team="bob-team")
    body = {"file": (io.BytesIO(_other_defence_zip()), "d.zip")}
    response = client.post("/api/v1/defences", headers=factories.api_token(bob), data=body)
    defences.run_evaluation(response.get_json()["submission_id"])
    _generate(client, admin, 1)
    if db.engine.name == "sqlite":  # the new defences have the numbers of the deleted ones
        assert sorted(db.session.scalars(sa.select(Defence.id))) == numbers
    answer = client.get("/api/v1/admin/similarity?round=1&all=1", headers=admin).get_json()
    (pair,) = [p for p in answer["pairs"] if p["kind"] == "defence"]
    assert pair["figures"]["shared_share"] == 0.0 and pair["thresholds"] == []
