"""GET /healthz: 200 when database, Redis and storage answer, 503 naming the part that does not."""

from __future__ import annotations

from app import create_app
from tests.conftest import free_port


def test_a_healthy_site_answers_ok_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "storage": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


def _variant(app, **overrides):
    return create_app("testing", **{**app.config, **overrides}).test_client()


def test_redis_down_is_named_and_its_address_not_shown(app):
    dead = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    response = _variant(app, REDIS_URL=dead).get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "failed" and body["failed"] == ["redis"]
    assert body["checks"] == {"database": "ok", "redis": "failed", "storage": "ok"}
    assert "hunter2" not in response.get_data(as_text=True)


def test_a_broker_on_another_redis_is_checked_too(app):
    response = _variant(app, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0").get("/healthz")
    assert response.status_code == 503 and response.get_json()["failed"] == ["redis"]


def test_a_database_that_cannot_be_opened_is_named(app, tmp_path):
    response = _variant(app, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'missing' / 'x.db'}").get("/healthz")
    assert response.status_code == 503 and response.get_json()["failed"] == ["database"]


def test_storage_that_cannot_be_written_is_named(app, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the upload folder should be")
    response = _variant(app, UPLOAD_FOLDER=str(blocker)).get("/healthz")
    assert response.status_code == 503 and response.get_json()["failed"] == ["storage"]
