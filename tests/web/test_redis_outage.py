"""While Redis is down: pages, logins and the API keep answering, and an upload is recorded within seconds."""

from __future__ import annotations

import io
import time

import pytest

from app import create_app
from app.extensions import db
from app.models import Phase, Submission, SubmissionStatus
from app.services import competition
from tests import factories
from tests.conftest import SAMPLE_DEFENCE, free_port


@pytest.fixture
def offline(app, alice):
    """The same site with its broker, result backend, cache and rate-limit Redis all refusing connections."""
    competition.update_state(phase=Phase.DEFENCE)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = {**app.config, "CELERY_BROKER_URL": dead, "RESULT_BACKEND": dead, "REDIS_URL": dead}
    settings.update(CELERY_ALWAYS_EAGER=False, RATELIMIT_STORAGE_URI=dead, LEADERBOARD_CACHE_TIME=5)
    site = create_app("testing", **settings)
    return site


def test_pages_and_logins_answer_while_redis_is_down(offline):
    client = offline.test_client()
    started = time.monotonic()
    assert client.post("/login", data={"username": "alice", "password": "secret-pw"}).status_code == 302
    for path in ("/", "/leaderboard/", "/defence/", "/api/v1/competition", "/api/v1/leaderboard"):
        assert client.get(path).status_code == 200, path
    assert time.monotonic() - started < 10


def test_an_upload_while_redis_is_down_is_answered_within_3_seconds_and_stays_queued(offline, alice):
    client = offline.test_client()
    started = time.monotonic()
    response = client.post(
        "/api/v1/defences",
        headers=factories.api_token(alice),
        data={"file": (io.BytesIO(SAMPLE_DEFENCE.read_bytes()), "defence.csv.zip")},
        content_type="multipart/form-data",
    )
    took = time.monotonic() - started
    assert response.status_code == 202, response.get_json()
    assert took < 3, f"the upload took {took:.1f} s"
    db.session.expire_all()
    stored = db.session.get(Submission, response.get_json()["submission_id"])
    assert stored.status is SubmissionStatus.QUEUED and stored.enqueued_at is None  # the sweeper sends it later
