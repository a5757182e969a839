"""The web process and the worker agree through the database, Redis and SMTP."""

from __future__ import annotations

import pytest

from app.services import competition
from tests import factories
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_mail_task_reaches_the_smtp_server(stack):
    stack.app.extensions["celery"].send_task(
        "srs.send_mail", args=["Hello from SRS", ["alice@example.org"], "plain body", "<p>html body</p>"]
    )
    msg = wait_for(lambda: stack.mailbox.messages, timeout=30, what="the mail")[0]
    assert msg["Subject"] == "Hello from SRS"
    assert "alice@example.org" in msg["X-Envelope-To"]


def test_phase_set_through_the_web_is_read_by_the_worker(stack):
    factories.make_user("boss", admin=True)
    client = stack.app.test_client()
    client.post("/login", data={"username": "boss", "password": "secret-pw"})
    response = client.post("/set_phase/", data={"phase": "Attack"})
    assert response.status_code == 302
    assert stack.call("srs.competition_state")["phase"] == "Attack"


def test_state_survives_a_restart_of_every_process(stack):
    competition.update_state(registration_open=False)
    competition.get_state().current_round = 3
    from app.extensions import db

    db.session.commit()
    stack.stop_worker()
    stack.start_worker()
    state = stack.call("srs.competition_state")
    assert state["round"] == 3 and state["registration_open"] is False
    # a new web process: a fresh app on the same database reads the same
    from app import create_app

    other = create_app("testing", SQLALCHEMY_DATABASE_URI=stack.env["DATABASE_URL"])
    with other.app_context():
        assert competition.get_state().current_round == 3
        assert competition.get_state().registration_open is False
