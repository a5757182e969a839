"""No upload is lost: a broker that does not answer, a worker that dies mid-task."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from app import clock, create_app
from app.extensions import db
from app.models import Phase, Submission, SubmissionStatus
from app.services import competition, lifecycle
from tests import factories
from tests.conftest import SAMPLE_DEFENCE, free_port
from tests.integration.conftest import wait_for
from tests.integration.helpers import logged_in, upload, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]  # claims under races: database-specific


@pytest.fixture
def alice(stack):
    factories.make_user("alice", team="al-bo")
    competition.update_state(phase=Phase.DEFENCE)


def test_upload_while_the_broker_is_down_is_kept_and_swept_later(stack, alice):
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    offline = create_app("testing", **{**stack.app.config, "CELERY_BROKER_URL": dead_broker})
    client = logged_in(offline, "alice")
    response = upload(client, "/defence/", SAMPLE_DEFENCE)
    assert response.status_code == 302  # the student is not turned away
    submission_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    db.session.expire_all()
    stored = db.session.get(Submission, submission_id)
    assert stored.status is SubmissionStatus.QUEUED and stored.enqueued_at is None
    # the sweeper (the worker's beat runs it every minute) hands it to a worker once the broker answers
    assert lifecycle.sweep()["requeued"] == 1
    result = wait_finished(logged_in(stack.app, "alice"), submission_id)
    assert result["status"] == "succeeded"


def _pool_children(stack) -> list[psutil.Process]:
    return psutil.Process(stack.worker.pid).children(recursive=True)


def _kill_when_running(stack, client, submission_id: int) -> None:
    wait_for(
        lambda: client.get(f"/api/v1/submissions/{submission_id}").get_json()["status"] == "running",
        timeout=60,
        interval=0.05,
        what="the evaluation to start",
    )
    children = wait_for(lambda: _pool_children(stack), timeout=10, what="the pool process")
    for child in children:
        os.kill(child.pid, signal.SIGKILL)


def test_a_worker_dying_mid_task_gets_one_retry_then_a_recorded_failure(stack, alice):
    client = logged_in(stack.app, "alice")
    response = upload(client, "/defence/", SAMPLE_DEFENCE)
    submission_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    _kill_when_running(stack, client, submission_id)  # first death: the task is handed back and retried
    db.session.expire_all()
    wait_for(
        lambda: (
            client.get(f"/api/v1/submissions/{submission_id}").get_json()["status"] == "running"
            and db.session.get(Submission, submission_id).attempts == 2
            or db.session.expire_all()
        ),
        timeout=60,
        interval=0.05,
        what="the retry",
    )
    _kill_when_running(stack, client, submission_id)  # second death: no more retries
    result = wait_finished(client, submission_id, timeout=120)
    assert result["status"] == "failed"
    assert "please upload it again" in result["error"]


def test_the_sweeper_fails_an_evaluation_stuck_running(stack, alice):
    user = factories.make_user("bob", team="al-bo")
    stuck = Submission(
        kind="defence",
        team_id=user.team_id,
        user_id=user.id,
        original_filename="x.zip",
        sha256="0" * 64,
        size=1,
        status=SubmissionStatus.RUNNING,
        attempts=1,
    )
    db.session.add(stuck)
    db.session.commit()
    from datetime import timedelta

    stuck.started_at = clock.now() - timedelta(hours=2)
    db.session.commit()
    assert lifecycle.sweep()["failed"] == 1
    db.session.expire_all()
    assert db.session.get(Submission, stuck.id).status is SubmissionStatus.FAILED
    assert "took too long" in db.session.get(Submission, stuck.id).error
