"""Evaluations are safe to run twice: extra messages for one upload (what sweeps sent for uploads waiting behind a
backlog) reach two real workers, and the upload is evaluated once, keeps one set of files and gets one mail."""

from __future__ import annotations

import re

import pytest
import redis
import sqlalchemy as sa

from app.extensions import db
from app.models import Defence, Phase
from app.services import competition
from app.storage import get_storage
from tests import factories
from tests.conftest import SAMPLE_DEFENCE, TEST_REDIS_URL
from tests.integration.conftest import wait_for
from tests.integration.helpers import logged_in, upload, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]  # claims under races: database-specific


def _id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _tasks_done(logs: list[str]) -> int:
    return sum(len(re.findall(r"Task srs\.evaluate_defence\[[^\]]+\] succeeded", log)) for log in logs)


def test_duplicate_messages_behind_a_backlog_evaluate_once(stack):
    factories.make_user("alice", team="al-bo")
    competition.update_state(phase=Phase.DEFENCE)
    client = logged_in(stack.app, "alice")
    first_worker, first_log = stack.worker, stack.worker_log
    stack.start_worker()  # a second worker: copies of one upload can now run side by side
    second_worker, second_log = stack.worker, stack.worker_log
    try:
        ahead = _id(upload(client, "/defence/", SAMPLE_DEFENCE))
        behind = _id(upload(client, "/defence/", SAMPLE_DEFENCE))
        celery = stack.app.extensions["celery"]
        for _ in range(2):  # two sweeps while `behind` waited used to send it twice more
            celery.send_task("srs.evaluate_defence", args=[behind])
        for submission_id in (ahead, behind):
            assert wait_finished(client, submission_id, timeout=300)["status"] == "succeeded"
        queue = stack.app.config["CELERY_TASK_QUEUE"]
        r = redis.Redis.from_url(TEST_REDIS_URL)
        wait_for(
            lambda: r.llen(queue) == 0 and _tasks_done([first_log.read_text(), second_log.read_text()]) >= 4,
            timeout=300,
            what="every message to be handled",
        )
    finally:
        stack.stop_worker()
        stack.worker, stack.worker_log = first_worker, first_log
    assert second_worker.returncode is not None
    db.session.expire_all()
    mails = wait_for(lambda: len(stack.mailbox.messages) >= 2 and stack.mailbox.messages, what="the mails")
    subjects = sorted(m["Subject"] for m in mails)
    assert subjects == sorted([f"[SRS] Defence #{ahead} accepted", f"[SRS] Defence #{behind} accepted"])
    defence = db.session.scalar(sa.select(Defence).where(Defence.submission_id == behind))
    storage = get_storage()
    for key in (defence.train_key, defence.test_key, defence.verification_key):
        assert storage.exists(key), key
    run_folders = {p.name for p in (stack.base / "uploads" / "defences" / str(behind)).iterdir()}
    assert run_folders == {defence.train_key.split("/")[2]}  # no other run's files are left
