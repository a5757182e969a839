"""A defence evaluated through the app with S3 storage: the web process and the worker share only the bucket."""

from __future__ import annotations

import os

import pytest
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from app.models import Phase
from app.services import competition
from tests import factories
from tests.conftest import SAMPLE_DEFENCE, TEST_REDIS_URL, run_namespace
from tests.integration.conftest import LiveStack, MailBox, wait_for
from tests.integration.helpers import logged_in, upload, wait_finished
from tests.s3server import apply_env, make_bucket, object_keys, s3_server

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_stack(tmp_path, monkeypatch):
    with s3_server(tmp_path) as s3_env:
        apply_env(monkeypatch, s3_env)
        bucket = make_bucket(s3_env)
        namespace = f"{run_namespace()}-s3"
        web_scratch, worker_scratch = tmp_path / "web-tmp", tmp_path / "worker-tmp"
        settings = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'srs.db'}",
            "CELERY_BROKER_URL": TEST_REDIS_URL,
            "RESULT_BACKEND": TEST_REDIS_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "CELERY_TASK_QUEUE": namespace,
            "REDIS_KEY_PREFIX": namespace + ":",
            "STORAGE_URL": f"s3://{bucket}/srs",
            "UPLOAD_FOLDER": str(tmp_path / "no-local-uploads"),
            "TEMPORARY_UPLOAD_FOLDER": str(web_scratch),
            "RATELIMIT_ENABLED": False,
        }
        app = create_app("testing", **settings)
        with app.app_context():
            upgrade()
        worker_env = {
            **os.environ,
            **s3_env,
            **{k: str(v) for k, v in settings.items() if k != "SQLALCHEMY_DATABASE_URI"},
            "DATABASE_URL": settings["SQLALCHEMY_DATABASE_URI"],
            "TEMPORARY_UPLOAD_FOLDER": str(worker_scratch),
            "LOG_FOLDER": str(tmp_path / "logs"),
            "SRS_CONFIG": "development",
            "SECRET_KEY": "s3-test-secret",
        }
        stack = LiveStack(app=app, env=worker_env, base=tmp_path, mailbox=MailBox())
        stack.extra.update(bucket=bucket, s3_env=s3_env, web_scratch=web_scratch, worker_scratch=worker_scratch)
        ctx = create_app("testing", **app.config).app_context()
        ctx.push()
        stack.start_worker()
        stack.start_baseline_worker()  # the test follows the baseline attack's reads from the bucket too
        try:
            yield stack
        finally:
            stack.stop_worker()
            stack.stop_baseline_worker()
            db.session.remove()
            ctx.pop()
            with app.app_context():
                db.engine.dispose()


def test_a_defence_is_evaluated_with_files_only_in_the_bucket(s3_stack):
    factories.make_user("alice", team="al-bo")
    competition.update_state(phase=Phase.DEFENCE)
    client = logged_in(s3_stack.app, "alice")
    response = upload(client, "/defence/", SAMPLE_DEFENCE)
    assert response.status_code == 302
    submission_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    result = wait_finished(client, submission_id, timeout=180)
    assert result["status"] == "succeeded", result.get("error") or s3_stack.worker_output()[-3000:]

    keys = object_keys(s3_stack.extra["s3_env"], s3_stack.extra["bucket"])
    assert f"srs/submissions/{submission_id}/upload.zip" in keys
    assert len(keys) == 4, keys  # the upload and the defence's train, test and verification sets
    assert all(key.startswith("srs/") for key in keys)

    # The baseline attack then reads the sets from the bucket too (into its own scratch folder while it runs).
    def estimated():
        data = client.get(f"/api/v1/submissions/{submission_id}").get_json()["baseline"]
        return data if data and data["status"] in ("succeeded", "failed") else None

    baseline = wait_for(estimated, timeout=300, interval=0.5, what="the baseline attack")
    assert baseline["status"] == "succeeded", s3_stack.baseline_log.read_text(errors="replace")[-3000:]
    # nothing stayed on either machine's disk: no local upload folder, scratch folders emptied
    assert not (s3_stack.base / "no-local-uploads").exists()
    for scratch in (s3_stack.extra["web_scratch"], s3_stack.extra["worker_scratch"]):
        assert not scratch.exists() or list(scratch.iterdir()) == []
    # the generated sets are served from the bucket to whoever may read them
    with s3_stack.app.app_context():
        storage = s3_stack.app.extensions["storage"]
        train = next(k for k in keys if "train" in k).removeprefix("srs/")
        with storage.open(train) as handle:
            assert handle.read(2) == b"PK"  # a zip
