"""Fixtures: app on a file SQLite database, client, runner, auth actions, factories, Redis, live stack."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from app import create_app
from app.extensions import db, limiter
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DEFENCE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_ALL = os.environ.get("SRS_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str):
    """Skip on a newcomer's machine; fail on CI, where nothing may skip."""
    if REQUIRE_ALL:
        pytest.fail(reason + " (SRS_REQUIRE_ALL=1: nothing may skip)")
    pytest.skip(reason)


def run_namespace() -> str:
    """A name unique to this test run, for its Redis keys and task queue: runs sharing a Redis stay apart."""
    return f"srs-test-{os.getpid()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app(tmp_path):
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'test.db'}",
        UPLOAD_FOLDER=str(tmp_path / "uploads"),
        TEMPORARY_UPLOAD_FOLDER=str(tmp_path / "tmp"),
        CELERY_BROKER_URL="memory://",
        CELERY_ALWAYS_EAGER=True,
        REDIS_URL=TEST_REDIS_URL,
    )
    # Tests touch the database through a twin app's context: a request to `app` then gets an app context of
    # its own, as in production, instead of sharing `g` (and Flask-Login's cached user) across requests.
    limiter.reset()  # counters live in the process's memory: each test starts from zero
    twin = create_app("testing", **app.config)
    with twin.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username: str = "alice", password: str = "secret-pw"):
        return self._client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def alice(app):
    """A student in team al-bo (password secret-pw)."""
    return factories.make_user("alice", team="al-bo")


@pytest.fixture
def admin(app):
    return factories.make_user("admin", admin=True)
