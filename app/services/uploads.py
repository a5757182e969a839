"""Receiving uploads: the phase and team gate, the bytes (hashed, size-capped), the first checks, the stored file
and its queued Submission row."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import current_app
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from app.evaluation.archive import inspect_upload
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Submission, SubmissionKind, SubmissionStatus, User
from app.services import competition, lifecycle, quotas, schedule
from app.services.errors import UploadRefused
from app.storage import NO_SPACE, Storage, StorageFull, get_storage, scratch_dir


def _receive(upload: FileStorage, tmp_dir: Path) -> tuple[Path, str, int]:
    """Write the upload to tmp_dir while hashing it; refuse it past MAX_CONTENT_LENGTH."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    path = tmp_dir / "upload.zip"
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("wb") as out:
            while chunk := upload.stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(
                        413, "too_large", f"The file is larger than {limit // (1024 * 1024)} MB: compress or trim it."
                    )
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise StorageFull(f"no space left in the scratch folder {tmp_dir.parent} to receive an upload") from exc
        raise
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

    Raises UploadRefused (409 phase closed, 403 no team, 429 quota used, 422 not a usable zip, 413 too large,
    507 no space left to keep it) with nothing recorded or stored.
    """
    check_may_upload(kind, user)
    quotas.check_quota(kind, user)  # early, before reading the file; not in check_may_upload: downloads stay open
    if upload is None or not upload.filename:
        raise UploadRefused(400, "no_file", "No file was sent: choose a .zip file in the form field 'file'.")
    storage = get_storage()
    try:
        with scratch_dir("upload-") as tmp_dir:
            path, sha256, size = _receive(upload, tmp_dir)
            try:
                inspect_upload(path, max_member_bytes=current_app.config["MAX_UNCOMPRESSED_BYTES"])
            except ValidationError as exc:
                raise UploadRefused(422, "invalid_file", exc.message) from exc
            submission = _record(kind, user, upload, sha256, size, path, storage)
    except StorageFull as exc:
        # Logged as an error: mailed to ADMIN where a mail server is set (see app.configure_logging).
        current_app.logger.error("upload refused, the platform is out of space: %s", exc)
        raise UploadRefused(
            507,
            "insufficient_storage",
            "The platform is out of storage space, so your upload was not kept. The staff have been told: "
            "try again later.",
        ) from exc
    finally:
        upload.close()
    lifecycle.enqueue(submission)
    return submission


def _record(
    kind: SubmissionKind, user: User, upload: FileStorage, sha256: str, size: int, path: Path, storage: Storage
) -> Submission:
    """Count, insert the row and store the file as one step per team: all of it, or (refused, failed) none of it."""
    # End the transaction of the checks above (they only read: nothing is lost) so that the team's lock is the
    # first statement of the next one: see quotas.lock_team.
    db.session.rollback()
    file_key = None
    try:
        quotas.claim_place(kind, user)  # the team's lock, held until the commit below: a burst cannot overshoot
        submission = Submission(
            kind=kind,
            team_id=user.team_id,
            user_id=user.id,
            round=competition.get_state().current_round,
            original_filename=(secure_filename(upload.filename) or "upload.zip")[:255],
            sha256=sha256,
            size=size,
            status=SubmissionStatus.QUEUED,
        )
        db.session.add(submission)
        db.session.flush()
        file_key = submission.file_key = f"submissions/{submission.id}/upload.zip"
        storage.save(file_key, path, move=True)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if file_key:
            storage.delete(file_key)
        raise
    return submission
