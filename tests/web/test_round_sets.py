"""A fresh split per round: a defence pinned again gets new capture ids, seed and public subset, prepared by a
worker; downloads wait (409) until they are ready, and round 1's labels do not score round 2's captures."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from app.evaluation.attack import proba_columns
from app.extensions import db
from app.models import Defence, Phase, RoundSet, Submission, SubmissionStatus
from app.services import attacks, competition, defences, round_sets
from app.storage import get_storage
from tests import factories
from tests.conftest import TEST_REDIS_URL
from tests.evaluation.test_defence import valid_rows

SMALL = {
    "NB_CLASSES": 4,
    "MEAN_NB_REP_PER_CLASS": 6,
    "DEVIATION_NB_REP_PER_CLASS": 1,
    "ROWS_PER_CAPTURE": 2,
    # The synthetic traffic is far smaller than the reference: plausibility (checked elsewhere) is off here.
    "PLAUSIBLE_MIN_BYTES_RATIO": 0.0,
    "PLAUSIBLE_MIN_TIME_RATIO": 0.0,
    "MIN_PACKET_BYTES": 0,
    "NB_TRACES_TO_CLASSIFY": 8,
    "REDIS_URL": TEST_REDIS_URL,
}


def _defence_zip() -> bytes:
    text = "cell_id,rep,direction_size,timestamp\n" + "".join(
        ",".join(map(str, row)) + "\n" for row in valid_rows({cell: 6 for cell in range(1, 5)})
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("defence.csv", text)
    return buffer.getvalue()


@pytest.fixture
def two_rounds(make_app):
    app = make_app(**SMALL)
    client = app.test_client()
    alice = factories.make_user("alice", team="al-bo")
    bob = factories.make_user("bob", team="bob-team")
    admin = factories.api_token(factories.make_user("admin", admin=True))
    competition.update_state(phase=Phase.BOTH)
    for user in (alice, bob):
        body = {"file": (io.BytesIO(_defence_zip()), "d.zip")}
        response = client.post("/api/v1/defences", headers=factories.api_token(user), data=body)
        assert response.status_code == 202, response.get_json()
        defences.run_evaluation(response.get_json()["submission_id"])
    db.session.expire_all()
    assert all(s.status is SubmissionStatus.SUCCEEDED for s in db.session.scalars(sa.select(Submission)))
    assert client.post("/api/v1/rounds", json={"round": 1}, headers=admin).status_code == 201
    return {"app": app, "client": client, "alice": alice, "bob": bob, "admin": admin}


def _test_set(client, headers, team_id: int) -> pd.DataFrame:
    response = client.get("/api/v1/attack/sets", headers=headers)
    assert response.status_code == 200, response.get_json()
    data = zipfile.ZipFile(io.BytesIO(response.get_data())).read(f"team_{team_id}_test.csv.zip")
    return pd.read_csv(io.BytesIO(data), compression="zip")


def _labels(round_number: int, defender_team_id: int) -> pd.DataFrame:
    """The hidden labels of a target's test set in a round (read as staff would)."""
    (match,) = [m for m in attacks.targets_of_defender(defender_team_id, round_number)]
    (found,) = round_sets.sets_of([match]).values()
    with get_storage().open(found.verification_key) as handle:
        return pd.read_csv(io.BytesIO(handle.read()), compression="zip")


def _attack(team_id: int, labels: pd.DataFrame) -> bytes:
    proba = np.zeros((len(labels), 4))
    proba[np.arange(len(labels)), labels.cell_id.to_numpy() - 1] = 1.0
    frame = pd.DataFrame(proba, columns=proba_columns(4))
    frame.insert(0, "capture_id", labels.capture_id.to_numpy())
    frame.insert(0, "team_id", team_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("attack.csv", frame.to_csv(index=False))
    return buffer.getvalue()


def test_round_two_gets_fresh_sets_and_round_one_labels_do_not_score_them(two_rounds):
    client, alice, bob = two_rounds["client"], two_rounds["alice"], two_rounds["bob"]
    headers = factories.api_token(alice)
    first = _test_set(client, headers, bob.team_id)
    learned = _labels(1, bob.team_id)
    assert set(first.capture_id) == set(learned.capture_id)  # round 1 uses the split made at upload

    assert client.post("/api/v1/rounds", json={"round": 2}, headers=two_rounds["admin"]).status_code == 201
    fresh = list(db.session.scalars(sa.select(RoundSet).where(RoundSet.round == 2)))
    assert len(fresh) == 2 and {s.status for s in fresh} == {RoundSet.PREPARING}
    waiting = client.get("/api/v1/attack/sets", headers=headers)
    assert waiting.status_code == 409 and waiting.get_json()["error"] == "sets_not_ready"
    assert "being prepared" in waiting.get_json()["message"]
    client.post("/login", data={"username": "alice", "password": "secret-pw"})
    page = client.get("/attack/")
    assert page.status_code == 200 and 'id="sets-preparing"' in page.get_data(as_text=True)
    assert client.get("/attack/?download=1").status_code == 409

    for round_set in fresh:
        round_sets.prepare(round_set.id)  # what the worker does
    db.session.expire_all()
    seeds = {s.seed for s in fresh} | {d.seed for d in db.session.scalars(sa.select(Defence))}
    assert len(seeds) == 4, "every split has its own seed"
    second = _test_set(client, headers, bob.team_id)
    assert len(second.capture_id.unique()) == 8
    assert not set(first.capture_id) & set(second.capture_id), "no capture id carries over"
    assert set(_labels(2, bob.team_id).capture_id) == set(second.capture_id)

    # Answers learned in round 1 are refused against round 2's test set; round 2's own labels score it.
    body = {"file": (io.BytesIO(_attack(bob.team_id, learned)), "a.zip")}
    stale = client.post("/api/v1/attacks", headers=headers, data=body).get_json()["submission_id"]
    attacks.run_evaluation(stale)
    db.session.expire_all()
    refused = db.session.get(Submission, stale)
    assert refused.status is SubmissionStatus.FAILED and "capture" in refused.error.lower()
    body = {"file": (io.BytesIO(_attack(bob.team_id, _labels(2, bob.team_id))), "a.zip")}
    good = client.post("/api/v1/attacks", headers=headers, data=body).get_json()["submission_id"]
    attacks.run_evaluation(good)
    db.session.expire_all()
    assert db.session.get(Submission, good).status is SubmissionStatus.SUCCEEDED


def test_sets_whose_task_never_reached_the_broker_are_sent_by_the_sweeper(two_rounds, monkeypatch):
    def broker_down(name, args):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(round_sets, "send_task", broker_down)
    assert client_post_round(two_rounds, 2).status_code == 201  # generation does not wait for the broker
    fresh = list(db.session.scalars(sa.select(RoundSet).where(RoundSet.round == 2)))
    assert len(fresh) == 2 and all(s.status == RoundSet.PREPARING and s.enqueued_at is None for s in fresh)

    sent = []
    monkeypatch.setattr(round_sets, "send_task", lambda name, args: sent.append((name, args)))
    result = two_rounds["app"].test_cli_runner().invoke(args=["sweep-submissions"])
    assert "Round sets: re-enqueued 2." in result.output, result.output
    assert sorted(sent) == sorted((round_sets.TASK_NAME, [s.id]) for s in fresh)
    db.session.expire_all()
    assert all(s.enqueued_at is not None for s in fresh)
    assert round_sets.sweep() == {"round_sets_requeued": 0}  # sent once: a queued task is not sent again
    assert len(sent) == 2


def client_post_round(two_rounds, number: int):
    return two_rounds["client"].post("/api/v1/rounds", json={"round": number}, headers=two_rounds["admin"])
