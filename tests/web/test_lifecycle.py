"""The evaluation lifecycle with a stand-in evaluation: claims, duplicates, retries, losing runs, mails, sweeper."""

from __future__ import annotations

import io
import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import Defence, Submission, SubmissionKind, SubmissionStatus
from app.services import defences, lifecycle, rounds, teams
from app.storage import get_storage
from tests import factories


@pytest.fixture
def mails(app, monkeypatch):
    """Subjects of the mails the lifecycle sends (the mail transport itself is tested in integration)."""
    sent: list[str] = []
    monkeypatch.setattr(lifecycle.mail, "mail_team", lambda team, subject, *a, **k: sent.append(subject))
    return sent


@pytest.fixture
def queued(alice):
    return factories.make_submission(alice.team, alice)


def _reload(submission_id: int) -> Submission:
    db.session.expire_all()
    return db.session.get(Submission, submission_id)


def _writing_evaluation(utility: float = 5.0, during=None):
    """An evaluation that stores one output and records a Defence; `during(run)` runs before it returns."""

    def evaluate(run: lifecycle.Run):
        out = run.work / "train.csv.zip"
        out.write_bytes(b"train")
        key = run.save("train.csv.zip", out)
        if during:
            during(run)
        s = run.submission
        defence = Defence(
            team_id=s.team_id, submission_id=s.id, utility_score=utility, utility={}, seed=1,
            train_key=key, test_key=key, verification_key=key,
        )  # fmt: skip
        return {"utility_score": utility}, [defence]

    return evaluate


def test_a_run_records_success_keeps_its_files_and_mails_once(app, queued, mails):
    lifecycle.run(queued.id, _writing_evaluation(), lifecycle.Delivery("m1", worker="celery@host-a"))
    s = _reload(queued.id)
    assert s.status is SubmissionStatus.SUCCEEDED and s.attempts == 1 and s.worker == "celery@host-a"
    defence = db.session.scalar(db.select(Defence))
    assert defence.train_key == f"defences/{s.id}/{s.run_id}/train.csv.zip"
    assert get_storage().exists(defence.train_key)
    assert mails == [f"[SRS] Defence #{s.id} accepted"]


def test_a_duplicate_message_while_running_touches_nothing(app, queued, mails):
    seen = {}

    def duplicate_arrives(run):
        before = _reload(queued.id)
        seen["before"] = (before.status, before.run_id, before.attempts, before.progress)
        lifecycle.run(queued.id, _writing_evaluation(utility=9.0), lifecycle.Delivery("m2"))  # e.g. a sweep's copy
        lifecycle.run(queued.id, _writing_evaluation(utility=9.0), lifecycle.Delivery("m2", redelivered=True))
        after = _reload(queued.id)
        seen["after"] = (after.status, after.run_id, after.attempts, after.progress)

    lifecycle.run(queued.id, _writing_evaluation(during=duplicate_arrives), lifecycle.Delivery("m1"))
    assert seen["before"] == seen["after"]
    assert _reload(queued.id).status is SubmissionStatus.SUCCEEDED
    assert [d.utility_score for d in db.session.scalars(db.select(Defence))] == [5.0]
    assert mails == [f"[SRS] Defence #{queued.id} accepted"]  # never both "accepted" and "refused"


def test_a_message_for_a_finished_submission_exits(app, queued, mails):
    lifecycle.run(queued.id, _writing_evaluation(), lifecycle.Delivery("m1"))
    lifecycle.run(queued.id, _writing_evaluation(utility=9.0), lifecycle.Delivery("m1", redelivered=True))
    assert len(mails) == 1 and _reload(queued.id).attempts == 1


def test_the_message_of_a_dead_run_gets_one_retry_then_a_failure(app, queued, mails):
    first = lifecycle.claim(queued.id, lifecycle.Delivery("m1"))  # its worker then dies without a word
    first.work = Path(app.config["TEMPORARY_UPLOAD_FOLDER"])
    first.work.mkdir(parents=True, exist_ok=True)
    left = first.work / "left.bin"
    left.write_bytes(b"partial")
    first.save("partial.bin", left)
    second = lifecycle.claim(queued.id, lifecycle.Delivery("m1", redelivered=True))  # the broker hands it back
    assert second is not None and second.run_id != first.run_id
    assert _reload(queued.id).attempts == 2
    assert not get_storage().exists(first.stored[0])  # the dead run's partial output is removed
    # the retry dies too: the next redelivery records the failure and tells the team
    assert lifecycle.claim(queued.id, lifecycle.Delivery("m1", redelivered=True)) is None
    s = _reload(queued.id)
    assert s.status is SubmissionStatus.FAILED and "upload it again" in s.error
    assert mails == [f"[SRS] Defence #{s.id} refused"]


def test_a_run_that_lost_its_claim_deletes_only_its_own_files_and_sends_nothing(app, queued, mails):
    stored = []

    def swept_meanwhile(run):
        stored.extend(run.stored)
        db.session.get(Submission, queued.id).started_at = clock.now() - timedelta(days=1)
        db.session.commit()
        assert lifecycle.sweep()["failed"] == 1

    lifecycle.run(queued.id, _writing_evaluation(during=swept_meanwhile), lifecycle.Delivery("m1"))
    s = _reload(queued.id)
    assert s.status is SubmissionStatus.FAILED and "took too long" in s.error
    assert db.session.scalar(db.select(Defence)) is None
    assert stored and not any(get_storage().exists(k) for k in stored)
    assert mails == []


def test_the_sweeper_sends_only_what_never_reached_the_broker(app, alice, monkeypatch):
    sent = []
    monkeypatch.setattr(lifecycle, "send_task", lambda name, args: sent.append(args[0]))
    waiting = factories.make_submission(alice.team, alice)  # handed over long ago, behind a backlog
    waiting.enqueued_at = clock.now() - timedelta(hours=3)
    never = factories.make_submission(alice.team, alice)  # stored while the broker was down
    db.session.commit()
    assert lifecycle.sweep()["requeued"] == 1
    assert sent == [never.id]
    assert _reload(never.id).enqueued_at is not None
    assert lifecycle.sweep()["requeued"] == 0


def test_the_running_threshold_leaves_room_for_the_brokers_retry(app):
    cfg = app.config
    assert cfg["BROKER_VISIBILITY_TIMEOUT"] > cfg["TASK_TIME_LIMIT"]
    assert cfg["SUBMISSION_STALE_RUNNING_SECONDS"] > cfg["BROKER_VISIBILITY_TIMEOUT"] + cfg["TASK_TIME_LIMIT"]
    assert (
        app.extensions["celery"].conf.broker_transport_options["visibility_timeout"] == cfg["BROKER_VISIBILITY_TIMEOUT"]
    )


def test_the_sweeper_removes_work_folders_left_by_a_hard_kill(app):
    from app.storage import scratch_dir

    with scratch_dir("defence-1-") as live:
        old = Path(app.config["TEMPORARY_UPLOAD_FOLDER"]) / "srs-defence-7-abc"
        old.mkdir()
        (old / "train.csv").write_text("x")
        stamp = time.time() - app.config["SUBMISSION_STALE_RUNNING_SECONDS"] - 10
        os.utime(old, (stamp, stamp))
        assert lifecycle.sweep()["cleaned"] == 1
        assert not old.exists() and live.exists()


def test_latest_defence_and_attack_are_the_last_uploaded_not_the_last_evaluated(app, alice):
    bob = factories.make_user("bob", team="cha-di")
    first = factories.make_submission(alice.team, alice, status=SubmissionStatus.SUCCEEDED)
    second = factories.make_submission(alice.team, alice, status=SubmissionStatus.SUCCEEDED)
    # the second upload finishes first, so its Defence row comes first
    for submission, score in ((second, 2.0), (first, 1.0)):
        db.session.add(
            Defence(
                team_id=alice.team_id, submission_id=submission.id, utility_score=score, utility={}, seed=1,
                train_key="k", test_key="k", verification_key="k",
            )
        )  # fmt: skip
        db.session.commit()
    assert defences.latest_defence(alice.team_id).utility_score == 2.0
    assert rounds.latest_defences()[alice.team_id].utility_score == 2.0
    factories.make_defence(bob.team)
    [match] = factories.make_round(1, [(bob.team, alice.team)])
    early = factories.make_submission(bob.team, bob, kind=SubmissionKind.ATTACK, round=1)
    late = factories.make_submission(bob.team, bob, kind=SubmissionKind.ATTACK, round=1)
    for submission, auc in ((late, 0.9), (early, 0.6)):
        db.session.add(
            factories.Attack(match_id=match.id, submission_id=submission.id, accuracy=0, top5_accuracy=0, roc_auc=auc)
        )
        db.session.commit()
    assert teams.latest_attacks([match.id])[match.id].roc_auc == 0.9


def test_refused_uploads_answer_on_their_page_or_as_json(app, client, auth, alice):
    from app.models import Phase
    from app.services import competition

    competition.update_state(phase=Phase.DEFENCE)
    auth.login()
    page = client.post("/defence/", data={"file": (io.BytesIO(b"not a zip"), "d.zip")})
    assert page.status_code == 422
    body = page.get_data(as_text=True)
    assert "zip" in body and 'name="file"' in body  # the form again, with the reason on it
    api = client.post(
        "/api/v1/defences", data={"file": (io.BytesIO(b"not a zip"), "d.zip")}, headers=factories.api_token(alice)
    )
    assert api.status_code == 422 and api.get_json()["error"] == "invalid_file"
    competition.update_state(phase=Phase.ATTACK)
    closed = client.get("/defence/")
    assert closed.status_code == 409 and "phase Attack" in closed.get_data(as_text=True)
    assert db.session.scalar(db.select(sa.func.count(Submission.id))) == 0


def test_the_upload_form_tells_its_script_the_servers_size_limit(app, client, auth, alice):
    """The browser refuses a file over the limit before sending it: the page must carry the limit in force."""
    from app.models import Phase
    from app.services import competition

    competition.update_state(phase=Phase.DEFENCE)
    app.config["MAX_CONTENT_LENGTH"] = 5 * 1024 * 1024
    auth.login()
    body = client.get("/defence/").get_data(as_text=True)
    assert re.search(r'<form [^>]*data-upload-progress data-max-bytes="5242880"', body)
    assert '<script src="/static/js/upload-progress.js" defer></script>' in body


def test_leaderboard_rounds_go_from_one_once_a_round_exists(app, client, alice):
    headers = factories.api_token(alice)
    assert client.get("/api/v1/leaderboard?round=0", headers=headers).status_code == 200  # the preview
    bob = factories.make_user("bob", team="cha-di")
    factories.make_round(1, [(alice.team, bob.team), (bob.team, alice.team)])
    response = client.get("/api/v1/leaderboard?round=0", headers=headers)
    assert response.status_code == 404 and "rounds go from 1 to 1" in response.get_json()["message"]
    assert client.get("/api/v1/leaderboard?round=1", headers=headers).status_code == 200


def test_links_in_mail_come_from_site_url(app):
    from app.services.mail import site_url

    app.config["SITE_URL"] = "https://srs.example.org/course"
    with app.app_context():  # as in a worker: no request to take the host from
        assert site_url("submissions.show", submission_id=5) == "https://srs.example.org/course/submissions/5"


def test_a_run_logs_where_its_time_went_for_the_staff(app, queued, mails, caplog, monkeypatch):
    monkeypatch.setattr(lifecycle.log, "disabled", False)  # an Alembic upgrade earlier in the session disables loggers

    def evaluate(run: lifecycle.Run):
        run.progress("reading")
        time.sleep(0.02)
        return _writing_evaluation()(run)

    with caplog.at_level("INFO", logger=lifecycle.log.name):
        lifecycle.run(queued.id, evaluate, lifecycle.Delivery("m1"))
    lines = [r.getMessage() for r in caplog.records if "stage seconds" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith(f"submission {queued.id} (defence, succeeded) stage seconds: ")
    timings = json.loads(lines[0].split("stage seconds: ", 1)[1])
    assert list(timings["seconds"])[:3] == ["claim", "evaluating", "progress updates"]
    assert {"reading", "commit", "cleanup", "notification"} <= set(timings["seconds"])
    assert timings["seconds"]["reading"] >= 0.02
    assert timings["started"] <= timings["committed"] and timings["cpu"] >= 0
