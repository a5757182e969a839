"""With a live worker: an attack's shown scores are on the hidden public subset until the round closes, and its
final scores then count the private captures only."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from app.evaluation.attack import proba_columns
from app.extensions import db
from app.models import Match, RoundSet
from app.services import round_sets
from app.storage import get_storage
from tests import factories
from tests.integration.conftest import wait_for
from tests.integration.helpers import upload, wait_finished, zip_csv
from tests.integration.test_attack_flow import _submission_id, round_one  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


def _right_on_public_only(target: int) -> bytes:
    """Probabilities right on the captures of the public subset and wrong on the others (read as staff)."""
    match = db.session.scalar(sa.select(Match).where(Match.round == 1, Match.defender_team_id == target))
    (held,) = round_sets.sets_of([match], prepare_missing=True).values()  # the attacker's own ids and subset
    with get_storage().open(held.verification_key) as handle:
        truth = pd.read_csv(io.BytesIO(handle.read()), compression="zip")
    cells = truth.cell_id.to_numpy()
    predicted = np.where(truth.public.to_numpy() == 1, cells, cells % 100 + 1)
    proba = np.zeros((len(truth), 100))
    proba[np.arange(len(truth)), predicted - 1] = 1.0
    frame = pd.DataFrame(proba, columns=proba_columns(100))
    frame.insert(0, "capture_id", truth.capture_id.to_numpy())
    frame.insert(0, "team_id", target)
    return zip_csv(frame.to_csv(index=False), "attack.csv")


def test_public_scores_until_the_round_closes_then_private_ones(stack, round_one):  # noqa: F811
    alice = round_one["clients"]["alice"]
    target = round_one["carol"].team_id
    result = wait_finished(alice, _submission_id(upload(alice, "/attack/", data=_right_on_public_only(target))))
    assert result["status"] == "succeeded", result["error"]
    (shown,) = result["results"]["scores"]
    assert result["results"]["scores_subset"] == "public"
    assert shown["accuracy"] == 1.0 and shown["nb_captures"] == 100  # one third of 300, one per cell
    team_page = alice.get("/team/al-bo").get_data(as_text=True)
    assert "public subset (100 captures)" in team_page and "private subset (" not in team_page

    admin = factories.api_token(factories.make_user("closer", admin=True))
    assert stack.app.test_client().post("/api/v1/rounds/1/close", headers=admin).status_code == 200
    final = alice.get(f"/api/v1/submissions/{result['id']}").get_json()["results"]
    # Right on every public capture, wrong on every private one: the final score is 0, not 1/3 over all captures.
    assert final["scores_subset"] == "private" and final["scores"][0]["accuracy"] == 0.0
    assert final["scores_note"] == "private subset (200 captures)" and final["scores"][0]["nb_captures"] == 200
    assert "private subset (200 captures)" in alice.get("/team/al-bo").get_data(as_text=True)


def test_a_defence_playing_again_keeps_its_pool_under_new_ids_prepared_by_the_worker(stack, round_one):  # noqa: F811
    alice = round_one["clients"]["alice"]
    target = round_one["carol"].team_id
    member = f"team_{target}_test.csv.zip"

    def test_set(response) -> pd.DataFrame:
        data = zipfile.ZipFile(io.BytesIO(response.get_data())).read(member)
        return pd.read_csv(io.BytesIO(data), compression="zip")

    first = test_set(alice.get("/attack/?download=1"))
    admin = factories.api_token(factories.make_user("generator", admin=True))
    assert stack.app.test_client().post("/api/v1/rounds", json={"round": 2}, headers=admin).status_code == 201

    def prepared():
        db.session.expire_all()
        sets = db.session.scalars(sa.select(RoundSet).where(RoundSet.round == 2)).all()
        return sets if sets and all(s.status == RoundSet.READY for s in sets) else None

    wait_for(prepared, timeout=180, interval=0.5, what="round 2's sets, prepared by the worker")
    second = test_set(alice.get("/attack/?download=1"))
    assert second.capture_id.nunique() == 300 and not set(first.capture_id) & set(second.capture_id)

    def captures(frame: pd.DataFrame) -> set[tuple]:
        return {tuple(rows.direction_size) for _, rows in frame.groupby("capture_id")}

    assert captures(first) == captures(second), "the same test pool, under new ids"
