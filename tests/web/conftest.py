"""Web fixtures: an app built with extra settings, for the tests that turn CSRF or a small rate limit on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from app import create_app
from app.extensions import db, limiter
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
