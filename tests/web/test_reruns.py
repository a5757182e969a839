"""Staff re-runs with a kept history, score provenance, and rescoring that shows differences."""

from __future__ import annotations

import hashlib
import html
import io
import re
import shutil
import zipfile
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from app import clock
from app.evaluation.attack import SCORER_VERSION, proba_columns
from app.extensions import db
from app.models import Attack, BaselineRun, Defence, Submission, SubmissionKind, SubmissionRun, SubmissionStatus
from app.services import attacks, defences, lifecycle
from app.storage import get_storage
from tests.conftest import SAMPLE_DEFENCE
from tests.factories import make_defence, make_round, make_submission, make_team, make_user
from tests.web.test_dashboard import text

NB_CAPTURES = 200


@pytest.fixture(autouse=True)
def mails(monkeypatch):
    """Result mails the lifecycle sends: (team name, subject)."""
    sent = []
    monkeypatch.setattr(lifecycle.mail, "mail_team", lambda team, subject, *a, **k: sent.append((team.name, subject)))
    return sent


def store_bytes(key: str, content: bytes, tmp_path: Path) -> str:
    source = tmp_path / f"store-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    source.write_bytes(content)
    get_storage().save(key, source, move=True)
    return key


def zipped(csv_text: str, member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, csv_text)
    return buffer.getvalue()


def attack_zip(app, team_id: int, cells: np.ndarray, seed: int = 0) -> bytes:
    """Probabilities for every verification capture: noisy, right about half the time."""
    nb_classes = app.config["NB_CLASSES"]
    rng = np.random.default_rng(seed)
    proba = rng.random((len(cells), nb_classes))
    hits = rng.random(len(cells)) < 0.5
    proba[np.flatnonzero(hits), cells[hits] - 1] += 50
    proba /= proba.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(proba, columns=proba_columns(nb_classes))
    frame.insert(0, "capture_id", np.arange(1000, 1000 + len(cells)))
    frame.insert(0, "team_id", team_id)
    return zipped(frame.to_csv(index=False), "attack.csv")


@pytest.fixture
def scored_round(app, alice, tmp_path):
    """Round 1: al-bo attacks cha-di, whose pinned defence has a stored verification set; al-bo's upload scored."""
    defender = make_team("cha-di")
    make_user("charlie", team="cha-di")
    defence = make_defence(defender)
    cells = np.tile(np.arange(1, app.config["NB_CLASSES"] + 1), NB_CAPTURES // app.config["NB_CLASSES"])
    verification = pd.DataFrame({"capture_id": np.arange(1000, 1000 + len(cells)), "cell_id": cells})
    defence.verification_key = store_bytes(
        f"defences/{defence.submission_id}/r1/verification.csv.zip",
        zipped(verification.to_csv(index=False), "verification.csv"),
        tmp_path,
    )
    defence.seed = 424242
    db.session.commit()
    (match,) = make_round(1, [(alice.team, defender)])
    submission = upload_attack(app, alice, defender.id, cells, tmp_path)
    attacks.run_evaluation(submission.id)
    return {"match": match, "submission": reload(submission.id), "defence": defence, "cells": cells}


def upload_attack(app, user, defender_id: int, cells, tmp_path, seed: int = 0) -> Submission:
    content = attack_zip(app, defender_id, cells, seed)
    submission = make_submission(user.team, user, kind=SubmissionKind.ATTACK, round=1, filename="a.zip")
    submission.sha256 = hashlib.sha256(content).hexdigest()
    submission.size = len(content)
    submission.file_key = store_bytes(f"submissions/{submission.id}/upload.zip", content, tmp_path)
    db.session.commit()
    return submission


def worker_runs(service, submission_id: int) -> None:
    """What a worker does with the re-run's message (in a fresh session, as a worker would)."""
    db.session.expire_all()
    service.run_evaluation(submission_id)


def reload(submission_id: int) -> Submission:
    db.session.expire_all()
    return db.session.get(Submission, submission_id)


def attacks_of(submission_id: int) -> list[Attack]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Attack).where(Attack.submission_id == submission_id)))


def history_rows(page) -> list[str]:
    body = page.get_data(as_text=True)
    return [text_of(row) for row in re.findall(r'<tr class="history-row".*?</tr>', body, re.S)]


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def rescore_rows(page) -> list[str]:
    body = page.get_data(as_text=True)
    return [text_of(row) for row in re.findall(r'<tr class="rescore-row".*?</tr>', body, re.S)]


# Access ---------------------------------------------------------------------------------------------------------


STAFF_POSTS = [
    ("/admin/submissions/1/rerun", {}),
    ("/admin/submissions/rerun-failed", {"since": "2020-01-01"}),
    ("/admin/rescore/", {"round": "1"}),
]


@pytest.mark.parametrize(("path", "data"), STAFF_POSTS)
def test_students_cannot_rerun_or_rescore(client, auth, alice, path, data):
    failed = make_submission(alice.team, alice, status=SubmissionStatus.FAILED)
    failed.finished_at = clock.now()
    db.session.commit()
    auth.login()
    response = client.post(path, data=data)
    assert response.status_code == 403
    assert "for the course staff" in text(response)
    assert reload(failed.id).status is SubmissionStatus.FAILED
    assert db.session.scalar(sa.select(sa.func.count(SubmissionRun.id))) == 0


def test_students_cannot_see_the_rescore_page(client, auth, alice):
    auth.login()
    assert client.get("/admin/rescore/").status_code == 403


def test_anonymous_users_are_sent_to_login(client, alice):
    response = client.post("/admin/submissions/rerun-failed", data={"since": "2020-01-01"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


# Provenance -----------------------------------------------------------------------------------------------------


def test_each_score_records_what_it_was_computed_from(app, scored_round):
    submission, defence = scored_round["submission"], scored_round["defence"]
    assert submission.status is SubmissionStatus.SUCCEEDED, submission.error
    (attack,) = attacks_of(submission.id)
    with get_storage().local_path(defence.verification_key) as path:
        verification_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert attack.provenance["upload_sha256"] == submission.sha256
    assert attack.provenance["verification_sha256"] == verification_sha
    assert attack.provenance["split_seed"] == 424242
    assert attack.provenance["scorer_version"] == SCORER_VERSION
    assert attack.provenance["defence_id"] == defence.id


def test_the_dashboard_shows_what_a_score_was_computed_from(client, auth, admin, scored_round):
    submission = scored_round["submission"]
    (attack,) = attacks_of(submission.id)
    auth.login("admin")
    body = client.get(f"/admin/submissions/{submission.id}").get_data(as_text=True)
    (row,) = [text_of(r) for r in re.findall(r'<tr class="provenance-row">.*?</tr>', body, re.S)]
    assert row.startswith("cha-di (round 1)") and f"{attack.accuracy:.6f}" in row
    assert submission.sha256 in row and attack.provenance["verification_sha256"] in row
    assert "424242" in row and f"version {SCORER_VERSION}" in row


# Re-run ---------------------------------------------------------------------------------------------------------


def test_rerun_of_a_failed_attack_keeps_the_failure_in_the_history(
    client, auth, admin, app, alice, scored_round, mails, tmp_path
):
    failed = upload_attack(app, alice, scored_round["match"].defender_team_id, scored_round["cells"], tmp_path, seed=1)
    failed.status, failed.error, failed.attempts = SubmissionStatus.FAILED, lifecycle.INTERNAL_ERROR, 2
    failed.run_id, failed.started_at, failed.finished_at = "deadbeef" * 4, clock.now(), clock.now()
    db.session.commit()
    auth.login("admin")

    response = client.post(f"/admin/submissions/{failed.id}/rerun")
    assert response.status_code == 302
    queued = reload(failed.id)
    assert (queued.status, queued.error, queued.attempts, queued.run_id) == (SubmissionStatus.QUEUED, None, 0, None)
    worker_runs(attacks, failed.id)
    assert reload(failed.id).status is SubmissionStatus.SUCCEEDED
    assert reload(failed.id).attempts == 1
    assert len(attacks_of(failed.id)) == 1

    page = client.get(f"/admin/submissions/{failed.id}")
    rows = history_rows(page)
    assert len(rows) == 2
    assert rows[0].startswith("1 failed") and "Internal error" in rows[0] and "deadbeef" in rows[0]
    assert "admin" in rows[0]
    assert rows[1].startswith("2 current run")
    assert "succeeded" in text(page)
    assert mails[-1] == ("al-bo", f"[SRS] Attack #{failed.id} scored")


def test_rerun_of_a_scored_attack_replaces_its_scores_and_keeps_the_old_ones(client, auth, admin, scored_round):
    submission = scored_round["submission"]
    (before,) = attacks_of(submission.id)
    auth.login("admin")
    client.post(f"/admin/submissions/{submission.id}/rerun")
    assert attacks_of(submission.id) == []  # queued again: its scores do not count meanwhile
    worker_runs(attacks, submission.id)
    (after,) = attacks_of(submission.id)
    assert after.accuracy == pytest.approx(before.accuracy) and after.provenance == before.provenance
    (run,) = db.session.scalars(sa.select(SubmissionRun).where(SubmissionRun.submission_id == submission.id))
    assert run.number == 1 and run.status is SubmissionStatus.SUCCEEDED
    # The run keeps what students were shown: the public-subset scores (the full ones stay in the Attack rows).
    stored = run.results["scores"][0]
    assert stored["subset"] == "public" and stored["accuracy"] == (before.public_scores or {}).get("accuracy")
    rows = history_rows(client.get(f"/admin/submissions/{submission.id}"))
    assert rows[0].startswith("1 succeeded") and "(public subset)" in rows[0]


@pytest.mark.parametrize("status", [SubmissionStatus.QUEUED, SubmissionStatus.RUNNING])
def test_an_unfinished_submission_cannot_be_rerun(client, auth, admin, alice, status):
    submission = make_submission(alice.team, alice, status=status)
    auth.login("admin")
    response = client.post(f"/admin/submissions/{submission.id}/rerun")
    assert response.status_code == 409
    assert f"still {status.value}" in text(response)
    assert db.session.scalar(sa.select(sa.func.count(SubmissionRun.id))) == 0


def test_a_submission_whose_upload_is_gone_cannot_be_rerun(client, auth, admin, alice):
    submission = make_submission(alice.team, alice, status=SubmissionStatus.FAILED)
    submission.file_key = f"submissions/{submission.id}/upload.zip"
    db.session.commit()
    auth.login("admin")
    response = client.post(f"/admin/submissions/{submission.id}/rerun")
    assert response.status_code == 409
    assert "no longer stored" in text(response)
    assert reload(submission.id).status is SubmissionStatus.FAILED


def test_rerun_of_an_unknown_submission_is_404(client, auth, admin):
    auth.login("admin")
    assert client.post("/admin/submissions/999/rerun").status_code == 404


def test_the_rerun_button_needs_csrf(make_app, tmp_path):
    app = make_app(WTF_CSRF_ENABLED=True)
    admin = make_user("admin", admin=True)
    failed = make_submission(make_team("al-bo"), admin, status=SubmissionStatus.FAILED)
    failed.file_key = store_bytes(f"submissions/{failed.id}/upload.zip", b"zip", tmp_path)
    db.session.commit()
    client = app.test_client()
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    client.post("/login", data={"username": "admin", "password": "secret-pw", "csrf_token": token})
    assert client.post(f"/admin/submissions/{failed.id}/rerun").status_code == 400
    assert reload(failed.id).status is SubmissionStatus.FAILED
    page = client.get(f"/admin/submissions/{failed.id}").get_data(as_text=True)
    token = re.search(r'id="rerun".*?name="csrf_token" type="hidden" value="([^"]+)"', page, re.S).group(1)
    assert client.post(f"/admin/submissions/{failed.id}/rerun", data={"csrf_token": token}).status_code == 302
    assert reload(failed.id).status is SubmissionStatus.QUEUED


def failed_at(team, user, when: datetime, tmp_path) -> Submission:
    submission = make_submission(team, user, status=SubmissionStatus.FAILED)
    submission.finished_at, submission.error = when, "Internal error"
    submission.file_key = store_bytes(f"submissions/{submission.id}/upload.zip", b"zip", tmp_path)
    db.session.commit()
    return submission


def test_rerun_every_failed_submission_since_a_date(client, auth, admin, alice, tmp_path):
    old = failed_at(alice.team, alice, datetime(2026, 3, 1, 12, 0), tmp_path)
    recent = failed_at(alice.team, alice, datetime(2026, 3, 5, 8, 30), tmp_path)
    fine = make_submission(alice.team, alice, status=SubmissionStatus.SUCCEEDED)
    auth.login("admin")
    response = client.post("/admin/submissions/rerun-failed", data={"since": "2026-03-02"}, follow_redirects=True)
    assert response.status_code == 200
    assert "1 submissions that failed since 2026-03-02 00:00 UTC are queued again" in text(response)
    assert reload(recent.id).status is SubmissionStatus.QUEUED
    assert reload(old.id).status is SubmissionStatus.FAILED
    assert reload(fine.id).status is SubmissionStatus.SUCCEEDED
    assert [r.submission_id for r in db.session.scalars(sa.select(SubmissionRun))] == [recent.id]


def test_rerun_failed_with_a_bad_date_says_how_to_write_it(client, auth, admin, alice, tmp_path):
    failed = failed_at(alice.team, alice, clock.now(), tmp_path)
    auth.login("admin")
    response = client.post("/admin/submissions/rerun-failed", data={"since": "last tuesday"})
    assert response.status_code == 400
    assert "YYYY-MM-DD" in text(response)
    assert reload(failed.id).status is SubmissionStatus.FAILED


def test_the_submissions_page_offers_the_bulk_rerun(client, auth, admin):
    auth.login("admin")
    body = client.get("/admin/submissions/").get_data(as_text=True)
    assert 'id="rerun-failed"' in body and 'name="since"' in body


def test_flask_rerun_by_id_and_failed_since(runner, admin, alice, tmp_path):
    one = failed_at(alice.team, alice, datetime(2026, 3, 1), tmp_path)
    two = failed_at(alice.team, alice, datetime(2026, 3, 9), tmp_path)
    running = make_submission(alice.team, alice, status=SubmissionStatus.RUNNING)
    result = runner.invoke(args=["rerun", str(one.id)])
    assert result.exit_code == 0, result.output
    assert f"Submission #{one.id} queued again." in result.output
    result = runner.invoke(args=["rerun", str(running.id), "--failed-since", "2026-03-05"])
    assert result.exit_code == 1
    assert "still running" in result.output and "1 submissions that failed since 2026-03-05" in result.output
    assert reload(two.id).status is SubmissionStatus.QUEUED
    runs = db.session.scalars(sa.select(SubmissionRun).order_by(SubmissionRun.submission_id)).all()
    assert [(r.submission_id, r.rerun_by) for r in runs] == [(one.id, "cli"), (two.id, "cli")]
    assert runner.invoke(args=["rerun"]).exit_code == 2


def upload_defence(user, tmp_path) -> Submission:
    submission = make_submission(user.team, user, status=SubmissionStatus.QUEUED)
    submission.file_key = f"submissions/{submission.id}/upload.zip"
    shutil.copy(SAMPLE_DEFENCE, tmp_path / "defence.zip")
    get_storage().save(submission.file_key, tmp_path / "defence.zip", move=True)
    db.session.commit()
    defences.run_evaluation(submission.id)
    return reload(submission.id)


def defence_of(submission_id: int) -> Defence:
    db.session.expire_all()
    return db.session.scalar(sa.select(Defence).where(Defence.submission_id == submission_id))


def stored_sets(defence: Defence) -> dict[str, bytes]:
    storage = get_storage()
    return {key: storage.open(key).read() for key in (defence.train_key, defence.test_key, defence.verification_key)}


def csv_of(key: str) -> bytes:
    with get_storage().local_path(key) as path, zipfile.ZipFile(path) as archive:
        return b"".join(archive.read(name) for name in archive.namelist())


def test_rerun_of_a_pinned_defence_leaves_the_round_its_files(app, client, auth, admin, alice, tmp_path):
    submission = upload_defence(alice, tmp_path)
    assert submission.status is SubmissionStatus.SUCCEEDED, submission.error
    pinned = defence_of(submission.id)
    pinned_row = {c.key: getattr(pinned, c.key) for c in sa.inspect(Defence).column_attrs}
    files = stored_sets(pinned)
    other = make_team("cha-di")
    make_defence(other)
    make_round(1, [(other, alice.team), (alice.team, other)])
    auth.login("admin")
    client.post(f"/admin/submissions/{submission.id}/rerun")
    worker_runs(defences, submission.id)

    assert reload(submission.id).status is SubmissionStatus.SUCCEEDED
    kept = defence_of(submission.id)
    assert {c.key: getattr(kept, c.key) for c in sa.inspect(Defence).column_attrs} == pinned_row
    assert stored_sets(kept) == files
    # The re-run's own sets were thrown away: only the pinned run's folder holds files.
    folders = {p.parent for p in (Path(app.config["UPLOAD_FOLDER"]) / "defences" / str(submission.id)).rglob("*.zip")}
    assert [f.name for f in folders] == [kept.train_key.split("/")[-2]]
    page = client.get(f"/admin/submissions/{submission.id}")
    assert "Round 1 pinned this defence" in text(page)
    assert history_rows(page)[0].startswith("1 succeeded")


def test_rerun_of_an_unpinned_defence_updates_its_row_and_drops_the_old_files(client, auth, admin, alice, tmp_path):
    submission = upload_defence(alice, tmp_path)
    first = defence_of(submission.id)
    old_keys, old_id, seed = [first.train_key, first.test_key, first.verification_key], first.id, first.seed
    old_sets = [csv_of(key) for key in old_keys]
    auth.login("admin")
    client.post(f"/admin/submissions/{submission.id}/rerun")
    worker_runs(defences, submission.id)
    updated = defence_of(submission.id)
    assert updated.id == old_id and updated.seed == seed  # the same row, split with the same seed
    assert updated.verification_key != old_keys[2]
    assert not any(get_storage().exists(key) for key in old_keys)
    # The same seed splits the same way: a round generated while the re-run ran still gets the same sets.
    assert [csv_of(key) for key in (updated.train_key, updated.test_key, updated.verification_key)] == old_sets
    assert all(get_storage().exists(key) for key in (updated.train_key, updated.test_key, updated.verification_key))


def test_rerun_of_a_failed_defence_creates_its_defence(client, auth, admin, alice, tmp_path):
    submission = upload_defence(alice, tmp_path)
    gone = defence_of(submission.id)
    db.session.execute(sa.delete(BaselineRun).where(BaselineRun.defence_id == gone.id))  # failed: no estimate
    db.session.delete(gone)
    submission.status, submission.error = SubmissionStatus.FAILED, lifecycle.INTERNAL_ERROR
    db.session.commit()
    auth.login("admin")
    client.post(f"/admin/submissions/{submission.id}/rerun")
    worker_runs(defences, submission.id)
    assert reload(submission.id).status is SubmissionStatus.SUCCEEDED
    assert defence_of(submission.id) is not None


# Rescore --------------------------------------------------------------------------------------------------------


def test_rescore_of_an_untouched_round_shows_no_difference(client, auth, admin, scored_round):
    auth.login("admin")
    page = client.get("/admin/rescore/")
    assert page.status_code == 200 and 'id="rescore-form"' in page.get_data(as_text=True)
    response = client.post("/admin/rescore/", data={"round": "1"})
    assert response.status_code == 200
    assert "1 score recomputed, 0 differ." in text(response)
    (row,) = rescore_rows(response)
    (attack,) = attacks_of(scored_round["submission"].id)
    assert row.startswith("al-bo → cha-di") and " same " in f" {row} "
    assert row.count(f"{attack.accuracy:.6f}") == 2 and row.count(f"{attack.roc_auc:.6f}") == 2


def test_rescore_shows_a_tampered_score(client, auth, admin, scored_round):
    (attack,) = attacks_of(scored_round["submission"].id)
    true_accuracy = attack.accuracy
    attack.accuracy = 0.99
    db.session.commit()
    auth.login("admin")
    response = client.post("/admin/rescore/", data={"round": "1"})
    assert "1 score recomputed, 1 differs." in text(response)
    (row,) = rescore_rows(response)
    assert "differs" in row and "0.990000" in row and f"{true_accuracy:.6f}" in row


def test_rescore_names_a_changed_verification_set(client, auth, admin, scored_round, tmp_path):
    defence = scored_round["defence"]
    cells = scored_round["cells"][::-1].copy()
    frame = pd.DataFrame({"capture_id": np.arange(1000, 1000 + len(cells)), "cell_id": cells})
    store_bytes(defence.verification_key, zipped(frame.to_csv(index=False), "verification.csv"), tmp_path)
    auth.login("admin")
    (row,) = rescore_rows(client.post("/admin/rescore/", data={"round": "1"}))
    assert "differs" in row and "the verification set changed" in row


def test_rescore_says_when_a_score_has_no_provenance(client, auth, admin, scored_round):
    (attack,) = attacks_of(scored_round["submission"].id)
    attack.provenance = None
    db.session.commit()
    auth.login("admin")
    (row,) = rescore_rows(client.post("/admin/rescore/", data={"round": "1"}))
    assert " same " in f" {row} " and "no provenance: scored before it was recorded" in row


def test_rescore_of_an_unknown_round_is_refused(client, auth, admin, scored_round):
    auth.login("admin")
    response = client.post("/admin/rescore/", data={"round": "7"})
    assert response.status_code == 400


def test_flask_rescore_lists_differences_and_fails_on_them(runner, scored_round):
    result = runner.invoke(args=["rescore", "--round", "1"])
    assert result.exit_code == 0, result.output
    assert "Round 1: 1 scores recomputed, 0 differ." in result.output
    (attack,) = attacks_of(scored_round["submission"].id)
    attack.roc_auc = 0.123
    db.session.commit()
    result = runner.invoke(args=["rescore"])
    assert result.exit_code == 1
    assert "DIFFERS: al-bo -> cha-di" in result.output and "ROC-AUC 0.123000" in result.output
    assert runner.invoke(args=["rescore", "--round", "9"]).exit_code == 1
