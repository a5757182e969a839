"""Web fixtures: an app built with extra settings, for the tests that turn CSRF or a small rate limit on."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask

from app import create_app
from app.extensions import db, limiter
from app.services import mail, queue, registration
from tests.api_schema import SchemaCheckedClient
from tests.conftest import create_schema, share_compiled_templates


@pytest.fixture
def make_app(tmp_path) -> Iterator[Callable[..., Flask]]:
    """Build a testing app like the `app` fixture, with overrides; do not mix it with `app` in one test."""
    contexts = []

    def build(**overrides) -> Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'custom.db'}",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "TEMPORARY_UPLOAD_FOLDER": str(tmp_path / "tmp"),
            "CELERY_BROKER_URL": "memory://",
            "CELERY_ALWAYS_EAGER": True,
        }
        app = share_compiled_templates(create_app("testing", **(settings | overrides)))
        app.test_client_class = SchemaCheckedClient
        limiter.reset()  # after create_app: the limiter has no storage before its first init_app
        ctx = app.app_context()
        ctx.push()
        contexts.append(ctx)
        create_schema()
        return app

    yield build
    for ctx in reversed(contexts):
        db.session.remove()
        db.engine.dispose()
        ctx.pop()


class Outbox(list):
    """Mails sent, as (subject, recipients, text)."""

    def link_path(self, index: int = -1) -> str:
        """The path of the confirmation link in a registration mail (the last one by default)."""
        return urlsplit(re.search(r"(http\S+/register/confirm/\S+)", self[index][2]).group(1)).path


@pytest.fixture
def registration_mails(monkeypatch) -> Outbox:
    """Mails of registrations. The request hands the registration to a worker
    (tests/integration/test_registration_mail.py runs the real one); here the worker's half runs at once."""
    outbox = Outbox()
    monkeypatch.setattr(registration.queue, "send_task", lambda name, args: registration.send_mail_for(*args))
    monkeypatch.setattr(
        registration.mail, "deliver", lambda subject, to, text, html=None: outbox.append((subject, to, text))
    )
    return outbox


class SlowMailbox(list):
    """Mails delivered, as (subject, recipients), each after a slow (1 s) delivery."""

    def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def broker_down_slow_mail(monkeypatch) -> SlowMailbox:
    """The broker refuses every task (so the mail tasks run in a background thread of the web process) and a
    delivery takes 1 s: what an answer that waited for the mail would show."""
    delivered = SlowMailbox()

    def broker_down(name, args):
        raise ConnectionError("broker down")

    def slow_delivery(subject, recipients, text, html=None):
        time.sleep(1.0)
        delivered.append((subject, recipients))

    monkeypatch.setattr(queue, "send_task", broker_down)
    monkeypatch.setattr(mail, "deliver", slow_delivery)
    return delivered
