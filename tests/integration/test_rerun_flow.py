"""Re-runs and rescoring with a live worker: a staff re-run goes through the broker and keeps the history."""

from __future__ import annotations

import io
import os
import re
import socket
import zipfile

import pandas as pd
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Defence
from tests.integration import test_attack_flow
from tests.integration.helpers import uniform_attack_csv, upload, wait_finished
from tests.integration.test_attack_flow import _submission_id

pytestmark = pytest.mark.integration
round_one = test_attack_flow.round_one  # the fixture: two teams with the sample defence, round 1, phase Attack


def _history(admin, submission_id: int) -> list[str]:
    body = admin.get(f"/admin/submissions/{submission_id}").get_data(as_text=True)
    rows = re.findall(r'<tr class="history-row".*?</tr>', body, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def _defence_row(team_id: int) -> dict:
    db.session.expire_all()
    defence = db.session.scalar(sa.select(Defence).where(Defence.team_id == team_id))
    return {c.key: getattr(defence, c.key) for c in sa.inspect(Defence).column_attrs}


def test_staff_rerun_through_the_worker_and_rescore(stack, round_one):
    alice, admin = round_one["clients"]["alice"], round_one["admin"]
    target = round_one["carol"].team_id
    sets = zipfile.ZipFile(io.BytesIO(alice.get("/attack/?download=1").get_data()))
    test = pd.read_csv(io.BytesIO(sets.read(f"team_{target}_test.csv.zip")), compression="zip")
    body = uniform_attack_csv(target, test["capture_id"].unique())
    attack_id = _submission_id(upload(alice, "/attack/", data=body))
    first = wait_finished(alice, attack_id)
    assert first["status"] == "succeeded", first["error"]
    # Staff see which worker ran it (the conftest names the main worker test-<pid>@<host>).
    worker = f"test-{os.getpid()}@{socket.gethostname()}"
    page = admin.get(f"/admin/submissions/{attack_id}").get_data(as_text=True)
    assert f'<dd id="worker">{worker}</dd>' in page
    listing = admin.get("/admin/submissions/?kind=attack").get_data(as_text=True)
    assert f'<td class="worker">{worker}</td>' in listing

    assert admin.post(f"/admin/submissions/{attack_id}/rerun").status_code == 302
    again = wait_finished(alice, attack_id)
    assert again["status"] == "succeeded", again["error"]
    assert again["results"]["scores"] == first["results"]["scores"]
    rows = _history(admin, attack_id)
    assert rows[0].startswith("1 succeeded") and "ROC-AUC 0.5000" in rows[0] and worker in rows[0]
    assert rows[1].startswith("2 current run")

    rescored = admin.post("/admin/rescore/", data={"round": "1"}).get_data(as_text=True)
    assert "1 score recomputed, 0 differ." in rescored
    result = stack.app.test_cli_runner().invoke(args=["rescore", "--round", "1"])
    assert result.exit_code == 0 and "Round 1: 1 scores recomputed, 0 differ." in result.output

    # Round 1 pinned alice's defence: re-running its upload leaves the row and its files as they were.
    pinned = _defence_row(round_one["alice"].team_id)
    assert admin.post(f"/admin/submissions/{pinned['submission_id']}/rerun").status_code == 302
    assert wait_finished(alice, pinned["submission_id"])["status"] == "succeeded"
    assert _defence_row(round_one["alice"].team_id) == pinned
    assert alice.get("/attack/?download=1").status_code == 200
