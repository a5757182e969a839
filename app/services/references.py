"""The reference of undefended traffic: per-cell medians computed once per file, stored, and handed to evaluations."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from app import clock
from app.evaluation.archive import inspect_upload
from app.evaluation.defence import CellMedians, DefenceSettings, compute_reference
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Reference, User
from app.services import audit
from app.services.errors import Refused, Unavailable
from app.services.settings import defence_settings
from app.storage import scratch_dir

log = logging.getLogger(__name__)

# Medians already computed by this process, by file hash and settings: a worker that sees its database
# emptied (tests, a fresh deployment) stores the same file again without reading it again.
_computed: dict[tuple[str, str], dict] = {}


class ReferenceRefused(Refused):
    """A reference file refused; `message` says what to do."""


class NoReference(Unavailable):
    """No reference to measure defences against: the staff must upload one."""


def current_reference() -> Reference | None:
    """The reference defences are measured against now: the active one activated last."""
    return db.session.scalar(
        sa.select(Reference)
        .where(Reference.active.is_(True))
        .order_by(Reference.activated_at.desc(), Reference.id.desc())
        .limit(1)
    )


def reference_medians(reference: Reference) -> CellMedians:
    return CellMedians.from_dict(reference.medians)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _measure(path: Path, sha256: str, settings: DefenceSettings) -> dict:
    """Per-cell medians of the file (CellMedians.to_dict()); ValidationError when it is not a usable reference."""
    key = (sha256, repr(settings))
    if key not in _computed:
        _computed[key] = compute_reference(path, settings).to_dict()
    return _computed[key]


def _by_sha256(sha256: str) -> Reference | None:
    return db.session.scalar(sa.select(Reference).where(Reference.sha256 == sha256))


def _store(path: Path, source: str, created_by: str | None) -> Reference:
    """The Reference row of this file, computed and inserted when new; ValidationError for a bad file."""

    sha256 = _sha256(path)
    existing = _by_sha256(sha256)
    if existing is not None:
        return existing
    medians = _measure(path, sha256, defence_settings(current_app.config))
    row = Reference(
        sha256=sha256,
        source=source[:255],
        medians=medians,
        nb_cells=len(medians["cell_id"]),
        nb_captures=int(sum(medians["nb_captures"])),
        created_by=created_by,
    )
    db.session.add(row)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # another process stored the same file first: use its row
        db.session.rollback()
        existing = _by_sha256(sha256)
        if existing is None:
            raise
        return existing
    return row


def reference_for_evaluation() -> Reference:
    """The current reference; the first time one is needed, REFERENCE_TRACES is measured and stored.

    Raises NoReference (logged as an error: the staff must act) when there is none and the file is missing
    or unusable.
    """
    found = current_reference()
    if found is not None:
        return found
    path = Path(current_app.config["REFERENCE_TRACES"])
    if not path.is_file():
        log.error("REFERENCE_TRACES %s is not a file: defences cannot be measured", path)
        raise NoReference(_UNAVAILABLE)
    try:
        row = _store(path, path.name, None)
    except ValidationError as exc:
        log.error("REFERENCE_TRACES %s is not a usable reference: %s", path, exc.message)
        raise NoReference(_UNAVAILABLE) from exc
    if not row.active:  # staff retired it and none is active: it is still the configured one
        row.active, row.activated_at = True, clock.now()
        db.session.commit()
    log.info("reference #%s measured from %s (%s cells)", row.id, path, row.nb_cells)
    return row


_UNAVAILABLE = (
    "The platform cannot measure defences right now: its reference of undefended traffic is missing or "
    "unreadable. Your file was not judged; the staff have been told. Upload it again later."
)


def set_reference(path: Path, *, source: str, by: str) -> Reference:
    """Make the file at path (defence format: a zip holding one CSV) the current reference; commit.

    `by` names who did it (a staff username, or the command) for the record and the log.

    Defences measured before keep their reference; the ones evaluated from now on use this one. Setting a
    file that was a reference before makes its stored row current again (no second computation).

    Raises:
        ReferenceRefused: the file is not a readable defence-format zip, has bad sizes or no capture.
    """
    path = Path(path)
    try:
        inspect_upload(path, max_member_bytes=current_app.config["MAX_UNCOMPRESSED_BYTES"])
        row = _store(path, source, by[:64])
    except ValidationError as exc:
        details = [f"{c.name}: {c.message}" for c in exc.checks if not c.passed]
        raise ReferenceRefused(" ".join([exc.message, *details])) from exc
    db.session.execute(
        sa.update(Reference).where(Reference.id != row.id, Reference.active.is_(True)).values(active=False)
    )
    row.active, row.activated_at = True, clock.now()
    db.session.flush()
    audit.record(by, "reference", None, {"reference": row.id, "source": row.source, "sha256": row.sha256})
    db.session.commit()
    log.info("reference #%s (%s, sha256 %s) set by %s", row.id, row.source, row.sha256, by)
    return row


def set_reference_upload(upload: FileStorage | None, actor: User) -> Reference:
    """Receive a staff upload (at most MAX_CONTENT_LENGTH bytes) into scratch space and make it the reference.

    Raises ReferenceRefused (400 no file, 413 too large, 422 not a usable reference).
    """
    if upload is None or not upload.filename:
        raise ReferenceRefused("No file was sent: choose a .zip holding one .csv of undefended traffic.", status=400)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        with scratch_dir("reference-") as tmp:
            path, size = tmp / "reference.zip", 0
            with path.open("wb") as out:
                while chunk := upload.stream.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise ReferenceRefused(f"The file is larger than {limit // (1024 * 1024)} MB.", status=413)
                    out.write(chunk)
            if size == 0:
                raise ReferenceRefused("The file is empty: choose a .zip holding one .csv of undefended traffic.")
            source = secure_filename(upload.filename) or "reference.zip"
            return set_reference(path, source=source, by=actor.username)
    finally:
        upload.close()


def references() -> list[Reference]:
    """Every stored reference, the current one first, then by activation, newest first."""
    return list(
        db.session.scalars(
            sa.select(Reference).order_by(Reference.active.desc(), Reference.activated_at.desc(), Reference.id.desc())
        )
    )
