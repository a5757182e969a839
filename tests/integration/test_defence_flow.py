"""Defence uploads through HTTP, evaluated by a live worker, with e-mails to the team."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from app.models import Phase
from app.services import competition
from tests import factories
from tests.conftest import SAMPLE_DEFENCE
from tests.integration.conftest import wait_for
from tests.integration.helpers import logged_in, mail_text, upload, wait_finished, zip_csv

pytestmark = pytest.mark.integration


@pytest.fixture
def team(stack):
    factories.make_user("alice", team="al-bo")
    factories.make_user("bob", team="al-bo")
    factories.make_user("eve", team="evil")
    competition.update_state(phase=Phase.DEFENCE)
    return logged_in(stack.app, "alice")


def test_sample_defence_succeeds_with_the_original_utility_score(stack, team):
    response = upload(team, "/defence/", SAMPLE_DEFENCE, name="test_defence.csv.zip")
    assert response.status_code == 302
    submission_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    page = team.get(f"/submissions/{submission_id}").get_data(as_text=True)
    assert "test_defence.csv.zip" in page and "sha-256" in page.lower()
    result = wait_finished(team, submission_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["results"]["utility_score"] == pytest.approx(5.730, abs=0.001)
    assert result["results"]["nb_test_captures"] == 300
    page = team.get(f"/submissions/{submission_id}").get_data(as_text=True)
    assert "succeeded" in page and "5.730" in page and "Bytes received" in page
    assert "5.730" in team.get("/team/al-bo").get_data(as_text=True)
    # both members get the metrics by e-mail
    msgs = wait_for(lambda: stack.mailbox.messages, timeout=30, what="the success mail")
    assert {"alice@example.org", "bob@example.org"} <= set(msgs[0]["X-Envelope-To"].split(", "))
    assert "5.730" in mail_text(msgs[0])
    # another team cannot see it, page or API
    eve = logged_in(stack.app, "eve")
    assert eve.get(f"/submissions/{submission_id}").status_code == 404
    assert eve.get(f"/api/v1/submissions/{submission_id}").status_code == 404


def test_shuffled_rows_give_the_same_results(stack, team, tmp_path):
    frame = pd.read_csv(SAMPLE_DEFENCE)
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    buffer = io.StringIO()
    shuffled.to_csv(buffer, index=False, float_format="%.17g")
    data = zip_csv(buffer.getvalue(), "shuffled.csv")
    original = wait_finished(team, _id(upload(team, "/defence/", SAMPLE_DEFENCE)))
    again = wait_finished(team, _id(upload(team, "/defence/", data=data, name="shuffled.zip")))
    assert again["status"] == "succeeded", again["error"]
    assert again["results"]["utility"] == original["results"]["utility"]
    assert again["results"]["utility_score"] == original["results"]["utility_score"]


def _id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _small_defence(**changes) -> str:
    rows = []
    rng = np.random.default_rng(1)
    for cell in range(1, 101):
        for rep in range(32):
            for i in range(8):
                rows.append((cell, rep, int(rng.choice([-1, 1]) * rng.integers(60, 1500)), i * 0.01))
    frame = pd.DataFrame(rows, columns=["cell_id", "rep", "direction_size", "timestamp"])
    for column, (index, value) in changes.items():
        frame[column] = frame[column].astype(object)
        frame.loc[index, column] = value
    return frame.to_csv(index=False)


@pytest.mark.parametrize(
    ("csv_text", "expected"),
    [
        (_small_defence(direction_size=(3, 0)), "direction_size"),
        (_small_defence(cell_id=(5, 101)), "101"),
        (_small_defence(timestamp=(9, "abc")), "timestamp"),
        (_small_defence().replace("cell_id,", "cell,", 1), "cell_id"),
    ],
    ids=["zero size", "cell out of grid", "timestamp not a number", "missing column"],
)
def test_bad_defence_fails_with_its_message(stack, team, csv_text, expected):
    result = wait_finished(team, _id(upload(team, "/defence/", data=zip_csv(csv_text))))
    assert result["status"] == "failed"
    failed = [c for c in result["results"]["checks"] if not c["passed"]]
    assert failed and any(expected in (c["message"] + " ".join(c["examples"])) for c in failed), failed
    msgs = wait_for(lambda: stack.mailbox.messages, timeout=30, what="the failure mail")
    assert "refused" in msgs[0]["Subject"]
    assert expected in mail_text(msgs[0])  # the mail names the failed check too


def test_not_a_zip_is_refused_at_once(stack, team):
    response = upload(team, "/defence/", data=b"cell_id,rep\n1,2\n", name="defence.csv")
    assert response.status_code == 422
    assert "zip" in response.get_data(as_text=True)


def test_api_upload_answers_202_with_a_status_url(stack, team):
    user = factories.make_user("carol", team="cha-di")
    headers = factories.api_token(user)
    client = stack.app.test_client()
    response = client.post(
        "/api/v1/defences",
        data={"file": (io.BytesIO(SAMPLE_DEFENCE.read_bytes()), "d.zip")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["status_url"].endswith(f"/api/v1/submissions/{body['submission_id']}")
    status = client.get(f"/api/v1/submissions/{body['submission_id']}", headers=headers).get_json()
    assert status["status"] in ("queued", "running", "succeeded")
    final = wait_for(
        lambda: (
            (s := client.get(f"/api/v1/submissions/{body['submission_id']}", headers=headers).get_json())["status"]
            in ("succeeded", "failed")
            and s
        ),
        timeout=180,
        what="API upload",
    )
    assert final["status"] == "succeeded"


def test_defence_upload_closed_outside_its_phase(stack, team):
    competition.update_state(phase=Phase.ATTACK)
    response = upload(team, "/defence/", SAMPLE_DEFENCE)
    assert response.status_code == 409
    assert "phase Attack" in response.get_data(as_text=True)


def test_zip_with_two_csvs_is_refused(stack, team):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "x")
        archive.writestr("b.csv", "y")
    response = upload(team, "/defence/", data=buffer.getvalue())
    assert response.status_code == 422


def _kb_copy() -> bytes:
    """The sample with sizes in kB (rounded, never 0): passes every format check, must fail plausibility."""
    frame = pd.read_csv(SAMPLE_DEFENCE)
    size = frame["direction_size"]
    frame["direction_size"] = np.sign(size) * np.maximum(1, (size.abs() / 1000).round()).astype(int)
    return zip_csv(frame.to_csv(index=False), "kb.csv")


def test_sample_costs_nothing_against_itself_and_a_kb_copy_is_implausible(stack, team):
    sample = wait_finished(team, _id(upload(team, "/defence/", SAMPLE_DEFENCE)))
    assert sample["status"] == "succeeded", sample["error"]
    overheads = sample["results"]["overheads"]
    assert [overheads[k] for k in ("bandwidth_in", "bandwidth_out", "bandwidth_total", "time")] == [0.0] * 4
    assert len(overheads["per_cell"]) == 100
    page = team.get(f"/submissions/{sample['id']}").get_data(as_text=True)
    assert "Overheads against undefended traffic" in page and page.count("0.0 %") >= 4
    mail = wait_for(lambda: stack.mailbox.messages, timeout=30, what="the success mail")[0]
    assert "bandwidth in 0.0 %, out 0.0 %, total 0.0 %; time 0.0 %" in mail_text(mail)
    stack.mailbox.messages.clear()

    kb = wait_finished(team, _id(upload(team, "/defence/", data=_kb_copy(), name="kb.zip")))
    assert kb["status"] == "failed"
    check = next(c for c in kb["results"]["checks"] if c["name"] == "plausibility")
    assert not check["passed"] and "kB" in check["message"]
    mail = wait_for(lambda: stack.mailbox.messages, timeout=30, what="the failure mail")[0]
    assert "refused" in mail["Subject"] and "plausibility" in mail_text(mail) and "kB" in mail_text(mail)
