"""A full upload folder: a real small file system (a 3 MB tmpfs), filled, then uploads through the API and the
form. They get 507 with a message that says what happened, nothing is half-written (no row, no partial file),
staff are told (an error in the log: mailed to ADMIN where a mail server is set), /healthz reports the storage
as degraded below STORAGE_MIN_FREE_MB, and uploads work again once space is back."""

from __future__ import annotations

import logging
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Phase, Submission
from app.services import audit, competition
from tests import factories
from tests.conftest import app_on, skip_or_fail

MOUNT_MB = 3


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs as the upload folder (mounting needs root: skipped elsewhere, required on CI)."""
    mount = tmp_path / "uploads"
    mount.mkdir()
    if os.geteuid() != 0:
        skip_or_fail("a full disk is tested on a 3 MB tmpfs, and mounting one needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MOUNT_MB}m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_app(small_disk, tmp_path):
    # Scratch on the same small file system: the upload is received there, then moved into place.
    with app_on(
        f"sqlite:///{tmp_path / 'test.db'}",
        tmp_path,
        UPLOAD_FOLDER=str(small_disk),
        TEMPORARY_UPLOAD_FOLDER=str(small_disk / "scratch"),
        STORAGE_MIN_FREE_MB=2,
    ) as app:
        competition.update_state(phase=Phase.BOTH, actor=audit.CLI)
        yield app


def upload_zip(tmp_path: Path) -> Path:
    """A 1.2 MB defence upload (stored, not compressed): too big for what is left, small enough once freed."""
    rows = "".join(f"{i % 100},{i % 7},{(-1) ** i * (60 + i % 1400)},{i * 0.001:.3f}\n" for i in range(75_000))
    path = tmp_path / "defence.csv.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("defence.csv", "cell_id,rep,direction_size,timestamp\n" + rows)
    assert 1_000_000 < path.stat().st_size < 2_000_000
    return path


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


class Collected(logging.Handler):
    """The records logged to the app's logger (where the production config's mail handler listens)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_full_upload_folder_answers_507_keeps_nothing_and_recovers(full_app, small_disk, tmp_path):
    upload = upload_zip(tmp_path)
    client = full_app.test_client()
    alice = factories.make_user("alice", team="al-bo")
    headers = factories.api_token(alice)
    assert client.get("/healthz").get_json()["status"] == "ok"
    filler = small_disk / "filler.bin"
    filler.write_bytes(b"\0" * (MOUNT_MB * 1024 * 1024 - 600 * 1024))  # about 0.6 MB left for a 1.2 MB upload
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "degraded"
    assert health.get_json()["checks"]["storage"] == "low_space" and health.get_json()["storage_free_mb"] < 2
    before = files_under(small_disk)

    staff = Collected()
    full_app.logger.disabled = False  # an Alembic upgrade earlier in this process (fileConfig) disables loggers
    full_app.logger.addHandler(staff)
    with upload.open("rb") as sent:
        api = client.post("/api/v1/defences", headers=headers, data={"file": (sent, "defence.csv.zip")})
    assert api.status_code == 507
    assert api.get_json()["error"] == "insufficient_storage"
    assert "out of storage space" in api.get_json()["message"] and "try again later" in api.get_json()["message"]
    full_app.logger.removeHandler(staff)
    assert any("out of space" in message for message in staff.messages)

    client.post("/login", data={"username": "alice", "password": "secret-pw"})
    with upload.open("rb") as sent:
        form = client.post("/defence/", data={"file": (sent, "defence.csv.zip")})
    assert form.status_code == 507 and "out of storage space" in form.get_data(as_text=True)
    assert 'name="file"' in form.get_data(as_text=True)  # the form page again, with the reason on its field

    assert db.session.scalar(sa.select(sa.func.count(Submission.id))) == 0  # no row
    assert files_under(small_disk) == before  # no partial file, no scratch left over

    filler.unlink()  # space is back
    assert client.get("/healthz").get_json()["status"] == "ok"
    with upload.open("rb") as sent:
        again = client.post("/api/v1/defences", headers=headers, data={"file": (sent, "defence.csv.zip")})
    assert again.status_code == 202  # accepted again (its checks run on the worker and record their own result)
    assert db.session.scalar(sa.select(sa.func.count(Submission.id))) == 1
