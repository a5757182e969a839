"""Sets per attacker: a defence's test pool is drawn once; each attacker of each round gets it under its own ids,
order and public subset; no test capture ever reaches a train set; one attacker's labels score nobody else's."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from app.evaluation.attack import proba_columns
from app.extensions import db
from app.models import Match, Phase, RoundSet, Submission, SubmissionStatus
from app.services import attacks, competition, defences, round_sets
from app.storage import get_storage
from tests import factories
from tests.conftest import SAMPLE_DEFENCE, TEST_REDIS_URL
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


def _teams(app, names: list[str], upload: bytes):
    """Users with a team each and an accepted defence (evaluated in the test process), and an admin token."""
    client = app.test_client()
    users = {name: factories.make_user(name, team=f"{name}-team") for name in names}
    admin = factories.api_token(factories.make_user("admin", admin=True))
    competition.update_state(phase=Phase.BOTH)
    for user in users.values():
        body = {"file": (io.BytesIO(upload), "d.zip")}
        response = client.post("/api/v1/defences", headers=factories.api_token(user), data=body)
        assert response.status_code == 202, response.get_json()
        defences.run_evaluation(response.get_json()["submission_id"])
    db.session.expire_all()
    assert all(s.status is SubmissionStatus.SUCCEEDED for s in db.session.scalars(sa.select(Submission)))
    return client, users, admin


def _generate(client, admin, number: int) -> None:
    response = client.post("/api/v1/rounds", json={"round": number}, headers=admin)
    assert response.status_code == 201, response.get_json()


def _download(client, user) -> zipfile.ZipFile:
    response = client.get("/api/v1/attack/sets", headers=factories.api_token(user))
    assert response.status_code == 200, response.get_json()
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def _read(sets: zipfile.ZipFile, name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(sets.read(name)), compression="zip")


def _sequences(frame: pd.DataFrame, key: list[str]) -> set[tuple]:
    """The packet-size sequence of every capture in a set (a capture's rows are in time order)."""
    return {tuple(rows.direction_size) for _, rows in frame.groupby(key, sort=False)}


def _labels(attacker, defender, round_number: int) -> pd.DataFrame:
    """The hidden labels of one attacker's copy of a target's test pool (read as staff would)."""
    match = db.session.scalar(
        sa.select(Match).where(
            Match.round == round_number,
            Match.attacker_team_id == attacker.team_id,
            Match.defender_team_id == defender.team_id,
        )
    )
    (held,) = round_sets.sets_of([match], prepare_missing=True).values()
    with get_storage().open(held.verification_key) as handle:
        return pd.read_csv(io.BytesIO(handle.read()), compression="zip")


def _attack(team_id: int, labels: pd.DataFrame, nb_classes: int) -> bytes:
    proba = np.zeros((len(labels), nb_classes))
    proba[np.arange(len(labels)), labels.cell_id.to_numpy() - 1] = 1.0
    frame = pd.DataFrame(proba, columns=proba_columns(nb_classes))
    frame.insert(0, "capture_id", labels.capture_id.to_numpy())
    frame.insert(0, "team_id", team_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("attack.csv", frame.to_csv(index=False))
    return buffer.getvalue()


def test_a_defence_pinned_for_three_rounds_never_hands_out_a_test_capture_in_a_train_set(make_app):
    """The course sample, three teams each attacking both others, three rounds: bob's defence is attacked by alice
    and carol every round. No packet-size sequence of any test set handed out for it appears in any of its train
    sets; every round's test set is the same pool; two attackers never share an id."""
    app = make_app(MATCHES_PER_TEAM=2, REDIS_URL=TEST_REDIS_URL)
    client, users, admin = _teams(app, ["alice", "bob", "carol"], SAMPLE_DEFENCE.read_bytes())
    bob = users["bob"]
    train_sequences, pools, ids = set(), [], {}
    for number in (1, 2, 3):
        _generate(client, admin, number)
        for attacker in ("alice", "carol"):
            sets = _download(client, users[attacker])
            train = _read(sets, f"team_{bob.team_id}_train.csv.zip")
            test = _read(sets, f"team_{bob.team_id}_test.csv.zip")
            train_sequences |= _sequences(train, ["cell_id", "rep"])
            pools.append(_sequences(test, ["capture_id"]))
            ids[number, attacker] = set(test.capture_id)
            first_seen = test.capture_id.drop_duplicates().tolist()  # the layout students' scripts rely on
            assert first_seen == sorted(first_seen) and len(first_seen) == 300
    exposed = set().union(*pools) & train_sequences
    print(f"test-pool captures found in train sets over three rounds: {len(exposed)} of {len(pools[0])}")
    assert not exposed
    assert all(pool == pools[0] for pool in pools), "every attacker of every round gets the same pool"
    overlap = ids[1, "alice"] & ids[1, "carol"]
    print(f"capture ids shared by two attackers of one defence: {len(overlap)} of 300")
    assert len(overlap) <= 1
    assert len({frozenset(v) for v in ids.values()}) == 6, "each attacker of each round has its own ids"


@pytest.fixture
def two_teams(make_app):
    app = make_app(**SMALL)
    client, users, admin = _teams(app, ["alice", "bob"], _defence_zip())
    _generate(client, admin, 1)
    return {"app": app, "client": client, "admin": admin, **users}


def test_round_one_downloads_at_once_even_before_a_worker_prepared_the_sets(two_teams):
    client, alice, bob = two_teams["client"], two_teams["alice"], two_teams["bob"]
    sets = list(db.session.scalars(sa.select(RoundSet).where(RoundSet.round == 1)))
    assert len(sets) == 2 and {s.status for s in sets} == {RoundSet.PREPARING}  # one per match; no worker here
    client.post("/login", data={"username": "alice", "password": "secret-pw"})
    assert "being prepared" in client.get("/attack/").get_data(as_text=True)
    download = client.get("/attack/?download=1")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert len(_read(zipfile.ZipFile(io.BytesIO(download.get_data())), f"team_{bob.team_id}_test.csv.zip")) > 0
    db.session.expire_all()
    mine = db.session.scalar(sa.select(RoundSet).join(Match).where(Match.attacker_team_id == alice.team_id))
    assert mine.status == RoundSet.READY and mine.train_key == mine.defence.train_key
    page = client.get("/attack/").get_data(as_text=True)
    assert "being prepared" not in page


def test_one_attackers_labels_do_not_score_anothers_ids_nor_a_later_round(two_teams):
    client, alice, bob, admin = two_teams["client"], two_teams["alice"], two_teams["bob"], two_teams["admin"]
    learned = _labels(alice, bob, 1)
    assert "pool_capture_id" in learned.columns
    # bob's own verification of alice's pool: his ids are not alice's, and nor is his test file.
    assert not set(_labels(bob, alice, 1).capture_id) & set(learned.capture_id)
    _generate(client, admin, 2)
    stale = client.post(
        "/api/v1/attacks",
        headers=factories.api_token(alice),
        data={"file": (io.BytesIO(_attack(bob.team_id, learned, 4)), "a.zip")},
    ).get_json()["submission_id"]
    attacks.run_evaluation(stale)  # what the worker does (it prepares alice's round-2 set first)
    db.session.expire_all()
    refused = db.session.get(Submission, stale)
    assert refused.status is SubmissionStatus.FAILED and "capture" in refused.error.lower()
    fresh = _labels(alice, bob, 2)
    assert not set(fresh.capture_id) & set(learned.capture_id)
    assert set(fresh.pool_capture_id) == set(learned.pool_capture_id)  # the same pool, under new ids
    body = {"file": (io.BytesIO(_attack(bob.team_id, fresh, 4)), "a.zip")}
    good = client.post("/api/v1/attacks", headers=factories.api_token(alice), data=body).get_json()["submission_id"]
    attacks.run_evaluation(good)
    db.session.expire_all()
    assert db.session.get(Submission, good).status is SubmissionStatus.SUCCEEDED


def test_a_set_that_cannot_be_prepared_is_answered_409_and_recorded_for_staff(two_teams):
    client, alice = two_teams["client"], two_teams["alice"]
    for defence in db.session.scalars(sa.select(RoundSet)).all():
        get_storage().delete(defence.defence.test_key)
    response = client.get("/api/v1/attack/sets", headers=factories.api_token(alice))
    assert response.status_code == 409 and response.get_json()["error"] == "sets_not_ready"
    assert "could not be prepared" in response.get_json()["message"]
    db.session.expire_all()
    failed = [s for s in db.session.scalars(sa.select(RoundSet)) if s.status == RoundSet.FAILED]
    assert failed and all(s.error for s in failed)
    client.post("/login", data={"username": "admin", "password": "secret-pw"})
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert 'id="failed-sets"' in dashboard and "alice-team attacking bob-team" in dashboard


def test_a_shared_split_handed_out_before_sets_per_attacker_stays_downloadable(two_teams):
    """Rounds generated by older code hold one fresh split per defence: their attackers keep getting it."""
    client, alice, bob = two_teams["client"], two_teams["alice"], two_teams["bob"]
    runner = two_teams["app"].test_cli_runner()
    assert "No defence was exposed" in runner.invoke(args=["exposed-defences"]).output
    db.session.execute(sa.delete(RoundSet))
    (match,) = attacks.targets(alice.team_id, 1)
    defence = match.defence
    legacy = RoundSet(
        round=1,
        defence_id=defence.id,
        seed=7,
        status=RoundSet.READY,
        train_key=defence.train_key,
        test_key=defence.test_key,
        verification_key=defence.verification_key,
    )
    db.session.add(legacy)
    db.session.commit()
    with get_storage().open(defence.test_key) as handle:
        handed_out = pd.read_csv(io.BytesIO(handle.read()), compression="zip")
    test = _read(_download(client, alice), f"team_{bob.team_id}_test.csv.zip")
    assert test.equals(handed_out)
    listed = runner.invoke(args=["exposed-defences"]).output
    assert f"Defence {defence.id} of team bob-team: the train sets of round(s) 1 held most of its test pool" in listed
    assert "still its team's latest defence" in listed and "upload their defence again" in listed


def test_sets_whose_task_never_reached_the_broker_are_sent_by_the_sweeper(make_app, monkeypatch):
    def broker_down(name, args):
        raise ConnectionError("Redis is down")

    app = make_app(**SMALL)
    client, _, admin = _teams(app, ["alice", "bob"], _defence_zip())
    monkeypatch.setattr(round_sets, "send_task", broker_down)
    _generate(client, admin, 1)  # generation does not wait for the broker
    fresh = list(db.session.scalars(sa.select(RoundSet).where(RoundSet.round == 1)))
    assert len(fresh) == 2 and all(s.status == RoundSet.PREPARING and s.enqueued_at is None for s in fresh)

    sent = []
    monkeypatch.setattr(round_sets, "send_task", lambda name, args: sent.append((name, args)))
    result = app.test_cli_runner().invoke(args=["sweep-submissions"])
    assert "Round sets: re-enqueued 2." in result.output, result.output
    assert sorted(sent) == sorted((round_sets.TASK_NAME, [s.id]) for s in fresh)
    db.session.expire_all()
    assert all(s.enqueued_at is not None for s in fresh)
    assert round_sets.sweep() == {"round_sets_requeued": 0}  # sent once: a queued task is not sent again
    assert len(sent) == 2
