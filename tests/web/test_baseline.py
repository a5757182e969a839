"""The baseline attack's privacy estimate: run and recorded once per accepted defence, its failures kept for the
staff, shown on the submission page (filling in when ready), the team page, the dashboard and in the API."""

from __future__ import annotations

import html
import re
import zipfile
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import Attack, BaselineRun, Defence, Round, Submission, SubmissionStatus
from app.services import baseline, leaderboard_cache, lifecycle
from app.services.lifecycle import Delivery
from app.storage import get_storage
from tests.factories import api_token, make_attack, make_defence, make_round, make_team

INTERVALS = {
    "accuracy": {"estimate": 0.857, "low": 0.817, "high": 0.897},
    "top5_accuracy": {"estimate": 0.95, "low": 0.93, "high": 0.97},
    "roc_auc": {"estimate": 0.992, "low": 0.988, "high": 0.996},
    "level": 0.95,
    "nb_resamples": 1000,
    "seed": 1,
}


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def with_run(defence: Defence, status: SubmissionStatus = SubmissionStatus.QUEUED, **values) -> BaselineRun:
    row = BaselineRun(defence_id=defence.id, status=status, **values)
    db.session.add(row)
    db.session.commit()
    return row


def succeed(row: BaselineRun) -> None:
    row.status, row.accuracy, row.top5_accuracy, row.roc_auc = SubmissionStatus.SUCCEEDED, 0.857, 0.95, 0.992
    row.intervals, row.details, row.finished_at = INTERVALS, {"nb_test_captures": 300, "seconds": 12.5}, clock.now()
    db.session.commit()


def test_the_privacy_estimate_fills_in_on_the_submission_page(client, auth, alice):
    defence = make_defence(alice.team)
    row = with_run(defence)
    auth.login()
    page = client.get(f"/submissions/{defence.submission_id}")
    assert "Privacy estimate" in text(page)
    assert "baseline attack is running" in text(page)
    assert "submission.js" in page.get_data(as_text=True)  # the page polls until the estimate is in
    assert 'data-baseline="queued"' in page.get_data(as_text=True)

    succeed(row)
    page = client.get(f"/submissions/{defence.submission_id}")
    words = text(page)
    assert "0.857 ± 0.040" in words and "0.992 ± 0.004" in words
    assert "This is a lower bound: real attackers may do better." in words
    assert "300 test captures" in words
    assert "submission.js" not in page.get_data(as_text=True)  # finished: nothing left to wait for


def test_the_api_gives_the_baseline_object(client, alice):
    defence = make_defence(alice.team)
    row = with_run(defence)
    headers = api_token(alice)
    answer = client.get(f"/api/v1/submissions/{defence.submission_id}", headers=headers).get_json()
    assert answer["baseline"]["status"] == "queued" and answer["baseline"]["accuracy"] is None
    succeed(row)
    answer = client.get(f"/api/v1/submissions/{defence.submission_id}", headers=headers).get_json()
    assert answer["baseline"]["status"] == "succeeded"
    assert answer["baseline"]["accuracy"] == 0.857 and answer["baseline"]["roc_auc"] == 0.992
    assert answer["baseline"]["intervals"]["accuracy"] == INTERVALS["accuracy"]
    assert answer["baseline"]["lower_bound"] is True


def test_a_failed_estimate_leaves_the_defence_accepted_and_tells_the_staff(client, auth, alice, admin):
    defence = make_defence(alice.team)
    with_run(defence, SubmissionStatus.FAILED, error="ValueError: the train set is unreadable")
    auth.login()
    page = text(client.get(f"/submissions/{defence.submission_id}"))
    assert "could not be computed" in page and "Your defence is accepted" in page
    assert "unreadable" not in page  # the reason is a platform fault, for the staff
    answer = client.get(f"/api/v1/submissions/{defence.submission_id}").get_json()
    assert answer["status"] == "succeeded" and answer["baseline"]["status"] == "failed"
    auth.logout()
    auth.login("admin")
    staff_page = text(client.get(f"/admin/submissions/{defence.submission_id}"))
    assert "ValueError: the train set is unreadable" in staff_page
    assert "failed" in staff_page


def test_the_team_page_shows_each_defences_estimate_and_scores_with_intervals(client, auth, alice):
    defence = make_defence(alice.team)
    succeed(with_run(defence))
    other = make_team("cha-di")
    (match,) = make_round(1, [(other, alice.team)])
    attack = make_attack(match, 0.9)
    attack.intervals = {**INTERVALS, "roc_auc": {"estimate": 0.9, "low": 0.88, "high": 0.94}}
    public_intervals = {**INTERVALS, "roc_auc": {"estimate": 0.8, "low": 0.74, "high": 0.86}}
    attack.public_scores = {"accuracy": 0.5, "top5_accuracy": 0.7, "roc_auc": 0.8, "intervals": public_intervals}
    db.session.commit()
    auth.login()
    page = text(client.get("/team/al-bo"))
    assert "Privacy estimate" in page and "0.857 ± 0.040" in page
    assert "lower bound" in page
    # The round is open: the public-subset score, with its own interval; the full one is not shown yet.
    assert "0.800 ± 0.060" in page and "public subset" in page
    assert "0.900 ± 0.030" not in page
    db.session.get(Round, 1).closed_at = clock.now()
    db.session.commit()
    page = text(client.get("/team/al-bo"))
    assert "0.900 ± 0.030" in page  # the attack against al-bo, with its interval, once the round closed


def test_attack_submission_pages_show_scores_with_intervals(client, auth, alice):
    target = make_team("cha-di")
    (match,) = make_round(1, [(alice.team, target)])
    attack = make_attack(match, 0.9)
    submission = db.session.get(Submission, attack.submission_id)
    submission.results = {
        "checks": [],
        "scores": [
            {
                "team_id": target.id,
                "team_name": "cha-di",
                "accuracy": 0.5,
                "top5_accuracy": 0.8,
                "roc_auc": 0.9,
                "intervals": INTERVALS,
                "subset": "public",  # what scoring records while the round is open
            }
        ],
    }
    db.session.commit()
    auth.login()
    page = text(client.get(f"/submissions/{submission.id}"))
    assert "0.500 ± 0.040" in page and "0.900 ± 0.004" in page
    assert "Privacy estimate" not in page  # attacks have none
    answer = client.get(f"/api/v1/submissions/{submission.id}").get_json()
    assert answer["baseline"] is None and answer["results"]["scores"][0]["intervals"] == INTERVALS


# --- the service: claim once, record, never fail the defence ---------------------------------------------------


def _zip(path, frame: pd.DataFrame):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.stem + ".csv", frame.to_csv(index=False))
    return path


def _synthetic_sets(tmp_path, defence: Defence) -> None:
    """Five cells told apart by their packet sizes: any sensible attack scores them perfectly."""
    rng = np.random.default_rng(3)
    train, test, labels = [], [], []
    capture = 0
    for cell in range(1, 6):
        for rep in range(12):
            sizes = np.where(rng.random(40) < 0.5, 100 * cell, -300 * cell)
            times = np.sort(rng.random(40)) * 2
            if rep < 9:
                train.append(pd.DataFrame({"cell_id": cell, "rep": rep, "direction_size": sizes, "timestamp": times}))
            else:
                capture += 1
                test.append(pd.DataFrame({"capture_id": capture, "direction_size": sizes, "timestamp": times}))
                labels.append((capture, cell))
    storage = get_storage()
    frames = {
        "train": pd.concat(train),
        "test": pd.concat(test),
        "verification": pd.DataFrame(labels, columns=["capture_id", "cell_id"]),
    }
    for name, frame in frames.items():
        key = f"defences/{defence.submission_id}/run/{name}.csv.zip"
        storage.save(key, _zip(tmp_path / f"{name}.zip", frame), move=True)
        setattr(defence, f"{name}_key", key)
    db.session.commit()


def test_a_run_records_the_scores_once(app, alice, tmp_path, monkeypatch):
    defence = make_defence(alice.team)
    _synthetic_sets(tmp_path, defence)
    with_run(defence)
    cleared = []
    monkeypatch.setattr(leaderboard_cache, "clear_leaderboard", lambda: cleared.append(1))
    baseline.run(defence.id, Delivery("message-1"))
    db.session.expire_all()
    row = db.session.scalar(sa.select(BaselineRun).where(BaselineRun.defence_id == defence.id))
    assert row.status is SubmissionStatus.SUCCEEDED and row.error is None
    assert row.accuracy == 1.0 and row.roc_auc == 1.0
    assert row.intervals["accuracy"]["estimate"] == 1.0 and row.details["nb_test_captures"] == 15
    assert row.attempts == 1 and cleared == [1]  # the leaderboard's plot reads it
    finished_at = row.finished_at
    baseline.run(defence.id, Delivery("message-1", redelivered=True))  # a duplicate: nothing happens
    db.session.expire_all()
    assert db.session.get(BaselineRun, row.id).finished_at == finished_at
    assert db.session.get(BaselineRun, row.id).attempts == 1


def test_a_duplicate_message_leaves_a_running_run_alone(app, alice):
    defence = make_defence(alice.team)
    with_run(defence)
    claimed = baseline.claim(defence.id, Delivery("first"))
    assert claimed is not None
    assert baseline.claim(defence.id, Delivery("second")) is None
    assert baseline.claim(defence.id, Delivery("second", redelivered=True)) is None  # not its message
    assert baseline.claim(defence.id, Delivery("first", redelivered=True)) is not None  # its worker died


def test_a_run_whose_worker_died_twice_is_failed_with_its_reason(app, alice):
    defence = make_defence(alice.team)
    row = with_run(defence)
    first = baseline.claim(defence.id, Delivery("first"))
    second = baseline.claim(defence.id, Delivery("first", redelivered=True))
    assert first is not None and second is not None and second[1] != first[1]
    assert baseline.claim(defence.id, Delivery("first", redelivered=True)) is None
    db.session.expire_all()
    failed = db.session.get(BaselineRun, row.id)
    assert failed.status is SubmissionStatus.FAILED and failed.attempts == 2
    assert failed.error == "The worker died twice while running it."


def test_the_sweeper_fails_a_run_stuck_running(app, alice):
    defence = make_defence(alice.team)
    row = with_run(defence)
    assert baseline.claim(defence.id, Delivery("first")) is not None
    assert baseline.sweep()["baseline_failed"] == 0  # just started
    db.session.get(BaselineRun, row.id).started_at = clock.now() - timedelta(days=1)
    db.session.commit()
    assert baseline.sweep()["baseline_failed"] == 1
    db.session.expire_all()
    stuck = db.session.get(BaselineRun, row.id)
    assert stuck.status is SubmissionStatus.FAILED and stuck.error == "Still running long after its time limit."


def test_a_failing_run_is_recorded_and_the_defence_stays_accepted(app, alice):
    defence = make_defence(alice.team)  # its set keys point at no file
    with_run(defence)
    baseline.run(defence.id)
    db.session.expire_all()
    row = db.session.scalar(sa.select(BaselineRun).where(BaselineRun.defence_id == defence.id))
    assert row.status is SubmissionStatus.FAILED and row.error
    assert db.session.get(Submission, defence.submission_id).status is SubmissionStatus.SUCCEEDED
    assert db.session.get(Defence, defence.id) is not None


def test_runs_never_sent_are_sent_by_the_sweeper_and_on_command(app, alice, runner, monkeypatch):
    sent = []
    monkeypatch.setattr(lifecycle, "send_task", lambda name, args: sent.append((name, args)))
    old = make_defence(alice.team)  # accepted before the baseline existed: no run
    queued = with_run(make_defence(alice.team))
    assert baseline.sweep()["baseline_requeued"] == 1
    assert sent == [("srs.run_baseline", [queued.defence_id])]
    result = runner.invoke(args=["queue-baselines"])
    assert "Queued 1 baseline attacks." in result.output
    assert sent[-1] == ("srs.run_baseline", [old.id])
    assert baseline.sweep()["baseline_requeued"] == 0


def test_the_task_goes_to_its_own_queue(app):
    celery = app.extensions["celery"]
    queue = app.config["CELERY_TASK_QUEUE"]
    assert celery.amqp.router.route({}, "srs.run_baseline")["queue"].name == queue + ".baseline"
    assert celery.amqp.router.route({}, "srs.evaluate_defence")["queue"].name == queue


@pytest.mark.parametrize("status", [SubmissionStatus.QUEUED, SubmissionStatus.SUCCEEDED])
def test_other_teams_cannot_read_the_estimate_through_the_submission(client, auth, alice, status):
    defence = make_defence(make_team("cha-di"))
    with_run(defence, status)
    auth.login()
    assert client.get(f"/submissions/{defence.submission_id}").status_code == 404
    assert client.get(f"/api/v1/submissions/{defence.submission_id}").status_code == 404


def test_attack_rows_without_intervals_still_show(client, auth, alice):
    target = make_team("cha-di")
    (match,) = make_round(1, [(alice.team, target)])
    make_attack(match, 0.8)
    assert db.session.scalar(sa.select(Attack)).intervals is None
    auth.login()
    page = text(client.get("/team/al-bo"))
    assert "0.800" in page and "0.800 ±" not in page
