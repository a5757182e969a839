"""Uploads: store the file, record a Submission, enqueue its evaluation, and record how it ended."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from billiard.exceptions import SoftTimeLimitExceeded
from flask import current_app
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from app.evaluation.archive import inspect_upload
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Submission, SubmissionKind, SubmissionStatus, Team, User, utcnow
from app.services import competition, schedule
from app.services.queue import send_task

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # one retry after a worker died mid-task
INTERNAL_ERROR = "Internal error while evaluating your file, please upload it again."


class UploadRefused(Exception):
    """An upload refused before queueing; status is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _storage():
    return current_app.extensions["storage"]


def _receive(upload: FileStorage, tmp_dir: Path) -> tuple[Path, str, int]:
    """Write the upload to tmp_dir while hashing it; refuse it past MAX_CONTENT_LENGTH."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    path = tmp_dir / "upload.zip"
    digest, size = hashlib.sha256(), 0
    with path.open("wb") as out:
        while chunk := upload.stream.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise UploadRefused(
                    413, "too_large", f"The file is larger than {limit // (1024 * 1024)} MB: compress or trim it."
                )
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise UploadRefused(422, "empty_file", "The file is empty: choose a .zip holding one .csv file.")
    return path, digest.hexdigest(), size


def check_phase(kind: SubmissionKind) -> None:
    """UploadRefused (409) naming the phase when uploads of this kind are closed."""
    phase = competition.get_state().phase
    allowed = phase.allows_defence if kind is SubmissionKind.DEFENCE else phase.allows_attack
    if not allowed:
        opens = "Defence or Both" if kind is SubmissionKind.DEFENCE else "Attack or Both"
        closed_at = schedule.last_closed_at(kind)
        raise UploadRefused(
            409,
            "phase_closed",
            f"{kind.value.capitalize()} uploads are closed"
            + (f" since {schedule.fmt(closed_at)}" if closed_at else "")
            + f": the competition is in phase {phase.value} (they open in phase {opens}).",
        )


def check_may_upload(kind: SubmissionKind, user: User) -> None:
    """UploadRefused when uploads (and downloads) of this kind are closed (409) or user has no team (403)."""
    check_phase(kind)
    if user.team_id is None:
        raise UploadRefused(403, "no_team", f"You must belong to a team to {kind.verb}.")


def create_submission(kind: SubmissionKind, user: User, upload: FileStorage | None) -> Submission:
    """Check and store an upload, record it as queued, commit, and enqueue its evaluation.

    Raises UploadRefused (409 phase closed, 403 no team, 422 not a usable zip, 413 too large) before anything
    is recorded.
    """
    check_may_upload(kind, user)
    if upload is None or not upload.filename:
        raise UploadRefused(400, "no_file", "No file was sent: choose a .zip file in the form field 'file'.")
    tmp_root = Path(current_app.config["TEMPORARY_UPLOAD_FOLDER"])
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=tmp_root, prefix="upload-"))
    try:
        path, sha256, size = _receive(upload, tmp_dir)
        try:
            inspect_upload(path, max_member_bytes=current_app.config["MAX_UNCOMPRESSED_BYTES"])
        except ValidationError as exc:
            raise UploadRefused(422, "invalid_file", exc.message) from exc
        submission = Submission(
            kind=kind,
            team_id=user.team.id,
            user_id=user.id,
            round=competition.get_state().current_round,
            original_filename=(secure_filename(upload.filename) or "upload.zip")[:255],
            sha256=sha256,
            size=size,
            status=SubmissionStatus.QUEUED,
        )
        db.session.add(submission)
        db.session.flush()
        submission.file_key = f"submissions/{submission.id}/upload.zip"
        try:
            _storage().save(submission.file_key, path, move=True)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            _storage().delete(f"submissions/{submission.id}/upload.zip")
            raise
    finally:
        upload.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
    enqueue(submission)
    return submission


TASK_NAMES = {SubmissionKind.DEFENCE: "srs.evaluate_defence", SubmissionKind.ATTACK: "srs.evaluate_attack"}


def enqueue(submission: Submission) -> bool:
    """Hand the submission to a worker. If the broker does not answer, it stays queued for the sweeper."""
    try:
        send_task(TASK_NAMES[submission.kind], [submission.id])
    except Exception as exc:  # broker down: the row is safe, the sweeper enqueues it later
        log.warning("could not enqueue submission %s: %s", submission.id, exc)
        return False
    submission.enqueued_at = utcnow()
    db.session.commit()
    return True


def start(submission_id: int) -> Submission | None:
    """Mark a submission running for one more attempt; None when it must not run (gone, done, or out of attempts)."""
    submission = db.session.get(Submission, submission_id, with_for_update=True)
    if submission is None or submission.status.finished:
        db.session.rollback()
        return None
    if submission.attempts >= MAX_ATTEMPTS:
        fail(submission, INTERNAL_ERROR)
        return None
    submission.attempts += 1
    submission.status = SubmissionStatus.RUNNING
    submission.started_at = utcnow()
    submission.progress = "starting"
    db.session.commit()
    return submission


def set_progress(submission: Submission, stage: str) -> None:
    submission.progress = stage
    db.session.commit()


def succeed(submission: Submission, results: dict[str, Any], *related: Any) -> None:
    """Record success, its results and any rows it produced, in one transaction."""
    for row in related:
        db.session.add(row)
    submission.status = SubmissionStatus.SUCCEEDED
    submission.results = results
    submission.error = None
    submission.progress = None
    submission.finished_at = utcnow()
    db.session.commit()


def fail(submission: Submission, message: str, results: dict[str, Any] | None = None) -> None:
    """Record failure with the reason a student reads, in one transaction."""
    db.session.rollback()
    submission = db.session.get(Submission, submission.id)
    submission.status = SubmissionStatus.FAILED
    submission.error = message
    submission.results = results
    submission.progress = None
    submission.finished_at = utcnow()
    db.session.commit()


@contextmanager
def recording_failures(submission: Submission) -> Iterator[None]:
    """Run an evaluation; any error ends in a recorded failure with a reason a student can read.

    A ValidationError records its message and checks; a time limit or a bug records an internal error
    (the bug is logged). Nothing propagates: the task always ends with the submission finished.
    """
    try:
        yield
    except ValidationError as exc:
        fail(submission, exc.message, {"checks": [c.to_dict() for c in exc.checks]})
    except SoftTimeLimitExceeded:
        fail(submission, "The evaluation took too long and was stopped: " + INTERNAL_ERROR)
    except Exception:
        log.exception("%s submission %s failed", submission.kind.value, submission.id)
        fail(submission, INTERNAL_ERROR)


def sweep() -> dict[str, int]:
    """Enqueue again submissions left queued too long; fail those running too long. Returns the counts."""
    now = utcnow()
    cfg = current_app.config
    queued_before = now - timedelta(seconds=cfg["SUBMISSION_STALE_QUEUED_SECONDS"])
    running_before = now - timedelta(seconds=cfg["SUBMISSION_STALE_RUNNING_SECONDS"])
    stale_queued = db.session.scalars(
        sa.select(Submission).where(
            Submission.status == SubmissionStatus.QUEUED,
            sa.or_(Submission.enqueued_at.is_(None), Submission.enqueued_at < queued_before),
        )
    ).all()
    requeued = sum(enqueue(s) for s in stale_queued)
    stale_running = db.session.scalars(
        sa.select(Submission).where(
            Submission.status == SubmissionStatus.RUNNING, Submission.started_at < running_before
        )
    ).all()
    for s in stale_running:
        fail(s, "The evaluation took too long and was stopped: " + INTERNAL_ERROR)
    return {"requeued": requeued, "failed": len(stale_running)}


def visible_submission(submission_id: int, user: User) -> Submission | None:
    """The submission if user may see it (own team, or admin), else None (answered as 404)."""
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        return None
    if user.is_admin or (user.team_id is not None and submission.team_id == user.team_id):
        return submission
    return None


def team_submissions(team: Team, page: int = 1, per_page: int = 20):
    return db.paginate(
        sa.select(Submission).where(Submission.team_id == team.id).order_by(Submission.id.desc()),
        page=page,
        per_page=per_page,
        error_out=False,
    )


def submission_as_dict(submission: Submission) -> dict[str, Any]:
    def iso(dt):
        return dt.isoformat() + "Z" if dt else None

    return {
        "id": submission.id,
        "kind": submission.kind.value,
        "status": submission.status.value,
        "progress": submission.progress,
        "error": submission.error,
        "results": submission.results,
        "created_at": iso(submission.created_at),
        "finished_at": iso(submission.finished_at),
        "original_filename": submission.original_filename,
        "size": submission.size,
        "sha256": submission.sha256,
        "round": submission.round,
    }


def reload(submission: Submission) -> Submission:
    """The submission as committed (after fail() or succeed())."""
    db.session.expire_all()
    return db.session.get(Submission, submission.id)
