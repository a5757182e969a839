"""An accepted defence's figures are shown as soon as they are final, while the worker still writes the sets."""

from __future__ import annotations

import base64
import io
import re

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from app.evaluation.defence import pipeline
from app.extensions import db
from app.models import Defence, Phase, Submission, SubmissionKind, SubmissionStatus
from app.services import competition, defences, lifecycle, uploads
from tests.conftest import SAMPLE_DEFENCE

API = "/api/v1"


@pytest.fixture
def upload(app, alice, monkeypatch):
    """The sample uploaded by alice through the upload service (the worker's half is run by each test)."""
    monkeypatch.setattr(lifecycle.mail, "mail_team", lambda *a, **k: None)
    competition.update_state(phase=Phase.DEFENCE)
    body = SAMPLE_DEFENCE.read_bytes()
    return uploads.create_submission(SubmissionKind.DEFENCE, alice, FileStorage(io.BytesIO(body), "sample.zip"))


def _token(client) -> str:
    basic = base64.b64encode(b"alice:secret-pw").decode()
    return client.post(f"{API}/tokens", headers={"Authorization": f"Basic {basic}"}).get_json()["token"]


def _while_writing(monkeypatch, look):
    """Run look() when the worker starts writing the sets, then write them (or raise what look raises)."""
    write = pipeline.write_defence_sets

    def looking(*args, **kwargs):
        look()
        return write(*args, **kwargs)

    monkeypatch.setattr(pipeline, "write_defence_sets", looking)


def _text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


def test_the_figures_are_shown_while_the_sets_are_written(app, client, auth, upload, monkeypatch):
    token = _token(client)
    seen = {}

    def look():
        status = client.get(f"{API}/submissions/{upload.id}", headers={"Authorization": f"Bearer {token}"})
        seen["api"] = status.get_json()
        auth.login()
        seen["page"] = _text(client.get(f"/submissions/{upload.id}"))
        seen["defences"] = db.session.scalar(sa.select(sa.func.count()).select_from(Defence))

    _while_writing(monkeypatch, look)
    defences.run_evaluation(upload.id)

    during = seen["api"]
    assert during["status"] == "running"  # scripts waiting for "succeeded" still get the sets with it
    assert during["results"]["utility_score"] == pytest.approx(5.730, abs=0.001)
    assert during["results"]["overheads"]["bandwidth_total"] == 0.0
    assert all(check["passed"] for check in during["results"]["checks"])
    assert seen["defences"] == 0  # no round can pin it, nor anyone download its sets, before they exist
    assert "Every check passed: the figures below are final" in seen["page"]
    assert "Utility score: 5.73" in seen["page"]

    db.session.expire_all()
    done = db.session.get(Submission, upload.id)
    assert done.status is SubmissionStatus.SUCCEEDED
    assert done.results == during["results"]  # the figures shown were the final ones
    assert db.session.scalar(sa.select(Defence).where(Defence.submission_id == upload.id)).train_size > 0
    assert "Every check passed: the figures below are final" not in _text(client.get(f"/submissions/{upload.id}"))


def test_a_failure_while_writing_replaces_the_figures_with_its_reason(app, client, auth, upload, monkeypatch):
    def disk_full():
        raise OSError(28, "No space left on device")

    _while_writing(monkeypatch, disk_full)
    defences.run_evaluation(upload.id)

    db.session.expire_all()
    failed = db.session.get(Submission, upload.id)
    assert failed.status is SubmissionStatus.FAILED and "upload it again" in failed.error
    assert failed.results is None  # no figures left that look accepted
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Defence)) == 0
    auth.login()
    page = _text(client.get(f"/submissions/{upload.id}"))
    assert "What went wrong" in page and "Utility score" not in page
