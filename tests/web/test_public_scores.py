"""No label oracle: while a round is open, students see scores on each test set's hidden public subset only;
the final scores, on the private subset (the captures outside the public one), are published when the round
closes (admin button, API, `flask close-round`, next round)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from app.evaluation.attack import proba_columns
from app.extensions import db
from app.models import Attack, Defence, Phase, Submission, SubmissionStatus
from app.services import attacks, competition
from app.services import mail as mail_service
from app.storage import get_storage
from tests import factories

NB_CAPTURES = 30
PUBLIC_ACCURACY = "0.400"  # 4 of the 10 public captures right
PRIVATE_ACCURACY = "0.750"  # 15 of the 20 private captures right


def _zip_bytes(frame: pd.DataFrame, member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, frame.to_csv(index=False))
    return buffer.getvalue()


def _stored_defence(team, tmp_path) -> tuple[Defence, pd.DataFrame]:
    """A defence whose verification set (30 captures of cells 1..10, one public capture per cell) is stored."""
    ids = np.arange(1000, 1000 + NB_CAPTURES) + team.id * 100
    cells = np.tile(np.arange(1, 11), 3)
    public = (np.arange(NB_CAPTURES) < 10).astype(int)
    verification = pd.DataFrame({"capture_id": ids, "cell_id": cells, "public": public})
    path = tmp_path / f"verification_{team.id}.zip"
    path.write_bytes(_zip_bytes(verification, "verification.csv"))
    key = f"defences/test/{team.id}/verification.csv.zip"
    get_storage().save(key, path)
    defence = factories.make_defence(team)
    defence.verification_key = key
    db.session.commit()
    return defence, verification


def attack_proba(cells: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
    """One-hot probabilities, right on the captures marked in `right` (a wrong guess names the next cell); by
    default on 4 of the 10 public captures and on 15 of the 20 private ones: public accuracy 0.4, private (final)
    0.75 (on all 30 it would be 0.633)."""
    if right is None:
        right = np.zeros(NB_CAPTURES, dtype=bool)
        right[:4] = True
        right[10:25] = True
    predicted = np.where(right, cells, cells % 10 + 1)
    proba = np.zeros((NB_CAPTURES, 100))
    proba[np.arange(NB_CAPTURES), predicted - 1] = 1.0
    return proba


def _attack_zip(team_id: int, verification: pd.DataFrame, right: np.ndarray | None = None) -> bytes:
    """alice's upload: attack_proba on the verification set's captures."""
    proba = attack_proba(verification.cell_id.to_numpy(), right)
    frame = pd.DataFrame(proba, columns=proba_columns(100))
    frame.insert(0, "capture_id", verification.capture_id.to_numpy())
    frame.insert(0, "team_id", team_id)
    return _zip_bytes(frame, "attack.csv")


@pytest.fixture
def sent(app, monkeypatch):
    """(subject, text) of every mail queued."""
    mails: list[tuple[str, str]] = []
    monkeypatch.setattr(mail_service, "queue_mail", lambda subject, to, text, html=None: mails.append((subject, text)))
    return mails


@pytest.fixture
def right():
    """Which of the 30 captures of bob's set alice's attack gets right (None: the default mix)."""
    return None


@pytest.fixture
def scored(app, client, tmp_path, sent, right):
    """Round 1 (open, Attack phase): alice's team attacked bob's, scored by the real scoring code."""
    alice = factories.make_user("alice", team="al-bo")
    bob = factories.make_user("bob", team="bob-team")
    admin = factories.make_user("admin", admin=True)
    _stored_defence(alice.team, tmp_path)
    _, verification = _stored_defence(bob.team, tmp_path)
    factories.make_round(1, [(alice.team, bob.team), (bob.team, alice.team)])
    competition.update_state(phase=Phase.ATTACK)
    headers = factories.api_token(alice)
    upload = {"file": (io.BytesIO(_attack_zip(bob.team_id, verification, right)), "attack.zip")}
    response = client.post("/api/v1/attacks", headers=headers, data=upload)
    assert response.status_code == 202, response.get_json()
    submission_id = response.get_json()["submission_id"]
    attacks.run_evaluation(submission_id)  # what the worker does
    db.session.expire_all()
    assert db.session.get(Submission, submission_id).status is SubmissionStatus.SUCCEEDED
    return {"alice": alice, "bob": bob, "admin": admin, "id": submission_id, "headers": headers}


def _student_views(client, scored) -> dict[str, str]:
    """Every page and API answer where a student could find scores, as text."""
    sid, headers = scored["id"], scored["headers"]
    client.post("/login", data={"username": "alice", "password": "secret-pw"})
    views = {
        "submission page": client.get(f"/submissions/{sid}").get_data(as_text=True),
        "team page": client.get("/team/al-bo").get_data(as_text=True),
        "defender's team page": client.get("/team/bob-team").get_data(as_text=True),
        "leaderboard": client.get("/leaderboard/?round=1").get_data(as_text=True),
        "overall": client.get("/leaderboard/?view=overall").get_data(as_text=True),
        "home": client.get("/").get_data(as_text=True),
    }
    for path in (f"/api/v1/submissions/{sid}", "/api/v1/submissions", "/api/v1/leaderboard?round=1"):
        views["API " + path] = client.get(path, headers=headers).get_data(as_text=True)
    views["API overall"] = client.get("/api/v1/leaderboard/overall", headers=headers).get_data(as_text=True)
    for path in ("/admin/", "/admin/exports/matches.csv", f"/admin/submissions/{sid}"):
        response = client.get(path)
        assert response.status_code == 403, path
    assert client.get("/api/v1/admin/exports/matches", headers=headers).status_code == 403
    client.post("/logout")
    return views


def _final_auc(submission_id: int) -> float:
    (row,) = db.session.execute(db.text("SELECT roc_auc FROM attack WHERE submission_id = :s"), {"s": submission_id})
    return row[0]


def test_students_see_only_public_scores_while_the_round_is_open(client, scored, sent):
    final_auc = _final_auc(scored["id"])
    api = client.get(f"/api/v1/submissions/{scored['id']}", headers=scored["headers"]).get_json()["results"]
    (score,) = api["scores"]
    assert score["accuracy"] == pytest.approx(0.4) and score["nb_captures"] == 10
    assert api["scores_subset"] == "public" and "public subset (10 captures)" in api["scores_note"]
    assert "private_scores" not in api and "public_scores" not in api
    for name, text in _student_views(client, scored).items():
        assert PRIVATE_ACCURACY not in text and f"{final_auc:.3f}" not in text, name
        assert str(final_auc)[:8] not in text and "0.75" not in text, name
    (subject, text) = next(m for m in sent if "Attack" in m[0])
    assert "0.400" in text and "public subset, 10 captures" in text and PRIVATE_ACCURACY not in text
    assert "final scores, on the private subset" in text


def test_the_pages_label_public_scores(client, scored):
    client.post("/login", data={"username": "alice", "password": "secret-pw"})
    page = client.get(f"/submissions/{scored['id']}").get_data(as_text=True)
    note = "public subset (10 captures); final scores on the private subset when the round closes"
    assert PUBLIC_ACCURACY in page and note in page and "full" not in page.lower()
    assert note in client.get("/team/al-bo").get_data(as_text=True)
    board = client.get("/leaderboard/?round=1").get_data(as_text=True)
    assert "is open: attack performance" in board and "public subset (10 captures)" in board
    assert "count only the private subset" in board


def test_staff_see_both_before_the_close(client, scored):
    headers = factories.api_token(scored["admin"])
    results = client.get(f"/api/v1/submissions/{scored['id']}", headers=headers).get_json()["results"]
    assert results["scores"][0]["accuracy"] == pytest.approx(0.4)
    assert results["private_scores"][0]["accuracy"] == pytest.approx(0.75) and "full_scores" not in results
    assert results["private_scores"][0]["subset"] == "private" and results["private_scores"][0]["nb_captures"] == 20
    assert results["private_scores_note"] == "private subset (20 captures)"
    client.post("/login", data={"username": "admin", "password": "secret-pw"})
    page = client.get(f"/admin/submissions/{scored['id']}").get_data(as_text=True)
    assert PRIVATE_ACCURACY in page and "Final scores on the private subset (20 captures) (staff only" in page
    assert page.count("private subset (20 captures)") >= 2  # the scores and the provenance table
    matches = client.get("/admin/exports/matches.csv").get_data(as_text=True).splitlines()
    header, line = matches[0].split(","), matches[1].split(",")
    assert "public_roc_auc" in header and line[header.index("accuracy")] == "0.75"
    assert line[header.index("scores_subset")] == "private" and line[header.index("nb_captures")] == "20"
    assert line[header.index("public_nb_captures")] == "10"
    submissions = client.get("/admin/exports/submissions.csv").get_data(as_text=True)
    assert "(private subset (20 captures))" in submissions


def test_closing_the_round_publishes_the_final_scores_on_the_private_subset(client, scored, sent):
    final_auc = _final_auc(scored["id"])
    admin = factories.api_token(scored["admin"])
    assert client.post("/api/v1/rounds/1/close", headers=scored["headers"]).status_code == 403
    response = client.post("/api/v1/rounds/1/close", headers=admin)
    assert response.status_code == 200 and response.get_json()["round"] == 1
    again = client.post("/api/v1/rounds/1/close", headers=admin)
    assert again.status_code == 409 and "already closed" in again.get_json()["message"]
    assert client.post("/api/v1/rounds/7/close", headers=admin).status_code == 404

    results = client.get(f"/api/v1/submissions/{scored['id']}", headers=scored["headers"]).get_json()["results"]
    assert results["scores_subset"] == "private" and results["scores"][0]["accuracy"] == pytest.approx(0.75)
    assert results["scores_note"] == "private subset (20 captures)" and results["scores"][0]["nb_captures"] == 20
    assert results["public_scores"][0]["accuracy"] == pytest.approx(0.4)
    views = _student_views(client, scored)
    assert PRIVATE_ACCURACY in views["submission page"] and PRIVATE_ACCURACY in views["team page"]
    assert "Final scores on the private subset (20 captures)" in views["submission page"]
    assert "private subset (20 captures)" in views["team page"]
    assert (
        "closed: final ranks, attack performance and leakage are computed on the private subset (20 captures)"
        in (views["leaderboard"])
    )
    assert "attacks scored on the private subset (20 captures)" in views["leaderboard"]  # the trade-off plot
    board = json.loads(views["API /api/v1/leaderboard?round=1"])
    assert board["public_subset"] is False and board["scores_subset"] == "private"
    assert board["scores_note"] == "private subset (20 captures)"
    leak = next(r for r in board["rows"] if r["team_name"] == "bob-team")["privacy_leakage"]
    assert leak == pytest.approx(final_auc)
    closing = [text for subject, text in sent if "Round 1 closed" in subject]
    assert len(closing) == 2 and any(PRIVATE_ACCURACY in text for text in closing)
    assert all("private subset (20 captures)" in text for text in closing)
    # No more attacks in a closed round: its final scores would read the labels.
    upload = {"file": (io.BytesIO(b"PK"), "attack.zip")}
    refused = client.post("/api/v1/attacks", headers=scored["headers"], data=upload)
    assert refused.status_code == 409 and refused.get_json()["error"] == "round_closed"


def test_leaderboard_counts_public_then_private_auc(client, scored):
    headers = scored["headers"]
    final_auc = _final_auc(scored["id"])

    def leak():
        rows = client.get("/api/v1/leaderboard?round=1", headers=headers).get_json()["rows"]
        return next(r for r in rows if r["team_name"] == "bob-team")["privacy_leakage"]

    public = leak()  # now cached: closing must not serve it again
    assert public != pytest.approx(final_auc)
    client.post("/api/v1/rounds/1/close", headers=factories.api_token(scored["admin"]))
    assert leak() == pytest.approx(final_auc)


def test_generating_the_next_round_closes_the_current_one(client, scored, sent):
    admin = factories.api_token(scored["admin"])
    assert client.post("/api/v1/rounds", json={"round": 2}, headers=admin).status_code == 201
    results = client.get(f"/api/v1/submissions/{scored['id']}", headers=scored["headers"]).get_json()["results"]
    assert results["scores_subset"] == "private"
    assert len([s for s, _ in sent if "Round 1 closed" in s]) == 2


def test_admin_page_button_and_cli_close_a_round(app, client, scored):
    client.post("/login", data={"username": "admin", "password": "secret-pw"})
    page = client.get("/generate_matches/").get_data(as_text=True)
    assert "Close round 1" in page
    response = client.post("/close_round/1", follow_redirects=True)
    closed = "Round 1 is closed: its final scores (on the private subset) are published."
    assert closed in response.get_data(as_text=True)
    assert "Close round 1" not in client.get("/generate_matches/").get_data(as_text=True)
    result = app.test_cli_runner().invoke(args=["close-round", "1"])
    assert result.exit_code != 0 and "already closed" in result.output


def test_cli_closes_a_round(app, scored):
    result = app.test_cli_runner().invoke(args=["close-round", "1"])
    assert result.exit_code == 0 and "Round 1 is closed" in result.output


RIGHT_ON_PUBLIC_ONLY = np.arange(NB_CAPTURES) < 10  # bob's public captures are the first 10


@pytest.mark.parametrize(
    ("right", "while_open", "once_closed"),
    [(RIGHT_ON_PUBLIC_ONLY, 1.0, 0.0), (~RIGHT_ON_PUBLIC_ONLY, 0.0, 1.0)],
    ids=["right on the public captures only", "right on the private captures only"],
)
def test_the_final_rank_counts_only_the_private_captures(client, scored, right, while_open, once_closed):
    """A planted attack perfect on one side of the split: the public side decides what is shown while the round is
    open, the private side alone decides the final scores and leaderboard (the public captures could be probed)."""
    sid, headers = scored["id"], scored["headers"]

    def shown() -> tuple[dict, dict, str]:
        results = client.get(f"/api/v1/submissions/{sid}", headers=headers).get_json()["results"]
        rows = client.get("/api/v1/leaderboard?round=1", headers=headers).get_json()["rows"]
        bob = next(r for r in rows if r["team_name"] == "bob-team")
        alice = next(r for r in rows if r["team_name"] == "al-bo")
        client.post("/login", data={"username": "alice", "password": "secret-pw"})
        page = client.get(f"/submissions/{sid}").get_data(as_text=True)
        client.post("/logout")
        return results, {"leakage": bob["privacy_leakage"], "attack": alice["attack_performance"]}, page

    def auc_is(value: float, accuracy: float) -> bool:
        """A perfect attack has ROC-AUC 1; one wrong on every capture (the next cell, one-hot) is worse than chance."""
        return value == 1.0 if accuracy == 1.0 else value < 0.5

    results, board, page = shown()
    (score,) = results["scores"]
    assert results["scores_subset"] == "public" and score["accuracy"] == while_open
    assert auc_is(score["roc_auc"], while_open) and board["leakage"] == pytest.approx(score["roc_auc"])
    public_table = page[page.index("Scores on the public subset (10 captures)") :].split("</table>")[0]
    assert public_table.split("<td>")[2].startswith(f"{while_open:.3f}<small")

    client.post("/api/v1/rounds/1/close", headers=factories.api_token(scored["admin"]))
    results, board, page = shown()
    (score,) = results["scores"]
    assert results["scores_subset"] == "private" and score["nb_captures"] == 20
    assert score["accuracy"] == once_closed
    assert auc_is(score["roc_auc"], once_closed) and board["leakage"] == pytest.approx(score["roc_auc"])
    assert "Final scores on the private subset (20 captures)" in page
    scores_table = page[page.index("Final scores on the private subset") :].split("</table>")[0]
    accuracy_cell = scores_table.split("<td>")[2]  # after the target team's cell
    assert accuracy_cell.startswith(f"{once_closed:.3f}<small")


def test_scores_of_the_old_scorer_are_labelled_all_captures_until_rescored(app, client, scored):
    """An attack scored by scorer version 1 holds final scores on all 30 captures: never called private."""
    attack = db.session.scalar(db.select(Attack).where(Attack.submission_id == scored["id"]))
    attack.accuracy = 19 / 30  # what version 1 stored: the default mix on all captures
    attack.provenance = {k: v for k, v in attack.provenance.items() if k not in ("subset", "nb_captures")}
    attack.provenance["scorer_version"] = "1"
    db.session.commit()
    client.post("/api/v1/rounds/1/close", headers=factories.api_token(scored["admin"]))

    results = client.get(f"/api/v1/submissions/{scored['id']}", headers=scored["headers"]).get_json()["results"]
    assert results["scores_subset"] == "all" and results["scores_note"] == "all 30 captures"
    assert results["scores"][0]["subset"] == "all" and results["scores"][0]["nb_captures"] == 30
    board = client.get("/api/v1/leaderboard?round=1", headers=scored["headers"]).get_json()
    assert board["scores_subset"] == "all" and board["scores_note"] == "all captures"
    client.post("/login", data={"username": "alice", "password": "secret-pw"})
    page = client.get(f"/submissions/{scored['id']}").get_data(as_text=True)
    assert "Final scores on the all 30 captures" not in page and "private subset (" not in page
    assert "Final scores on all 30 captures" in page
    assert "all captures" in client.get("/team/al-bo").get_data(as_text=True)

    result = app.test_cli_runner().invoke(args=["rescore", "--round", "1"])
    assert "scored by scorer version 1, now 2" in result.output
    assert "scored on the all captures, now on the private subset (20 captures)" not in result.output
    assert "scored on all captures, now on the private subset (20 captures)" in result.output
