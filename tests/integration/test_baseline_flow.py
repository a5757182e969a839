"""The baseline attack on the sample defence, run by the live baseline worker after the defence is accepted."""

from __future__ import annotations

import re

import pytest

from app.models import Phase
from app.services import competition
from tests import factories
from tests.conftest import SAMPLE_DEFENCE
from tests.integration.conftest import wait_for
from tests.integration.helpers import logged_in, upload, wait_finished

pytestmark = pytest.mark.integration


def test_the_sample_defence_gets_its_privacy_estimate(baseline_worker):
    stack = baseline_worker
    factories.make_user("alice", team="al-bo")
    competition.update_state(phase=Phase.DEFENCE)
    client = logged_in(stack.app, "alice")
    response = upload(client, "/defence/", SAMPLE_DEFENCE, name="test_defence.csv.zip")
    submission_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    result = wait_finished(client, submission_id, timeout=300)
    assert result["status"] == "succeeded", result["error"]
    assert result["baseline"]["status"] in ("queued", "running", "succeeded")

    def estimated():
        data = client.get(f"/api/v1/submissions/{submission_id}").get_json()["baseline"]
        return data if data["status"] in ("succeeded", "failed") else None

    logs = lambda: stack.baseline_log.read_text(errors="replace")[-3000:]  # noqa: E731
    baseline = wait_for(estimated, timeout=300, interval=0.5, what="the baseline attack")
    assert baseline["status"] == "succeeded", logs()
    # Undefended traffic: the baseline identifies most cells (85.7 % on the bench's split; chance is 1 %).
    assert baseline["accuracy"] >= 0.75, baseline
    assert baseline["roc_auc"] >= 0.97, baseline
    assert baseline["nb_test_captures"] == 300
    accuracy = baseline["intervals"]["accuracy"]
    assert accuracy["low"] < baseline["accuracy"] < accuracy["high"]
    assert "srs.run_baseline" in logs() and "succeeded" in logs()  # the baseline worker ran it

    page = client.get(f"/submissions/{submission_id}").get_data(as_text=True)
    assert "Privacy estimate" in page and "lower bound: real attackers may do better" in page
    assert re.search(rf"{baseline['accuracy']:.3f}.{{0,80}}±", page, re.S)
    # Where the defence leaks, cell by cell, as the worker recorded it: the counts add up to the accuracy.
    leak = client.get(f"/api/v1/submissions/{submission_id}").get_json()["leakage_by_cell"]["baseline"]
    assert sum(leak["captures"]) == 300 and len(leak["captures"]) == 100
    assert sum(leak["recognised"]) == round(baseline["accuracy"] * 300)
    assert len(leak["most_exposed"]) == 5
    assert f'id="leak-{submission_id}"' in page and "Most exposed cells: <strong>cell" in page
