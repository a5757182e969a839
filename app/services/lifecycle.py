"""The life of one evaluation, the same for every kind of upload: enqueue, claim, evaluate, record, notify; and
the sweeper that picks up what fell between the chairs."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from billiard.exceptions import SoftTimeLimitExceeded
from flask import current_app

from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Submission, SubmissionKind, SubmissionStatus, utcnow
from app.services import leaderboard_cache, mail
from app.services.queue import send_task
from app.storage import SCRATCH_PREFIX, get_storage, scratch_dir

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # one retry after a worker died mid-task
INTERNAL_ERROR = "Internal error while evaluating your file, please upload it again."
TASK_NAMES = {SubmissionKind.DEFENCE: "srs.evaluate_defence", SubmissionKind.ATTACK: "srs.evaluate_attack"}
OUTCOME_WORDS = {SubmissionKind.DEFENCE: "accepted", SubmissionKind.ATTACK: "scored"}


@dataclass(frozen=True)
class Delivery:
    """How the broker delivered the task message: its id, and whether it had been delivered before."""

    message_id: str | None = None
    redelivered: bool = False
    worker: str | None = None  # the Celery node that received it ("celery@host"), shown to staff

    @classmethod
    def of(cls, request: Any) -> Delivery:
        """The delivery of a Celery task request (`self.request` in a bound task)."""
        info = getattr(request, "delivery_info", None) or {}
        hostname = getattr(request, "hostname", None)
        return cls(
            getattr(request, "id", None), bool(info.get("redelivered")), str(hostname)[:255] if hostname else None
        )


@dataclass
class Run:
    """One run of an evaluation that holds its submission's claim; what it stores is its own until committed."""

    submission: Submission
    run_id: str
    work: Path | None = None
    stored: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)  # keys deleted once this run committed (files it replaced)
    outcome: SubmissionStatus | None = None  # None: another run or the sweeper took the submission away

    def key(self, name: str) -> str:
        """A storage key for one of this run's outputs: kinds/{submission id}/{run id}/{name}."""
        return f"{output_prefix(self.submission, self.run_id)}/{name}"

    def save(self, name: str, path: Path) -> str:
        """Store an output of this run (moved from path); deleted again unless this run commits."""
        key = self.key(name)
        get_storage().save(key, path, move=True)
        self.stored.append(key)
        return key

    def progress(self, stage: str) -> None:
        """Show the stage on the status page, while this run still holds the submission."""
        _update(self, progress=stage)
        db.session.commit()


Evaluate = Callable[[Run], tuple[dict[str, Any], list[Any]]]


def output_prefix(submission: Submission, run_id: str) -> str:
    return f"{submission.kind.value}s/{submission.id}/{run_id}"


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


def claim(submission_id: int, delivery: Delivery = Delivery()) -> Run | None:
    """Take the submission for one run, atomically; None when this message must leave it alone.

    The rule: a queued submission goes to the first message that claims it (one compare-and-set UPDATE on its
    status, which also writes a fresh run id). A running one is taken over only by the very message that
    started the current run coming back from the broker flagged as redelivered: Celery hands a message back
    when its worker process died (acks_late, reject_on_worker_lost) or when Redis's visibility timeout passed
    without an acknowledgement, which is longer than the task's hard time limit, so that run is dead. That
    retry is allowed while attempts < MAX_ATTEMPTS; after that the submission is failed. Any other message (a
    duplicate, or one for a finished submission) exits without touching anything.
    """
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.status.finished:
        db.session.rollback()
        return None
    previous = submission.run_id
    expected = [Submission.id == submission_id, Submission.status == submission.status]
    if submission.status is SubmissionStatus.RUNNING:
        own_message_back = (
            delivery.redelivered and delivery.message_id is not None and delivery.message_id == submission.task_id
        )
        if not own_message_back:
            log.info("submission %s is running under another run: duplicate message ignored", submission_id)
            db.session.rollback()
            return None
        expected.append(Submission.run_id == previous)
        if submission.attempts >= MAX_ATTEMPTS:
            dead = Run(submission, previous)
            fail(dead, INTERNAL_ERROR)
            if dead.outcome is SubmissionStatus.FAILED:
                notify(dead.submission)
            return None
    run_id = uuid.uuid4().hex
    claimed = db.session.execute(
        sa.update(Submission)
        .where(*expected)
        .values(
            status=SubmissionStatus.RUNNING,
            run_id=run_id,
            task_id=delivery.message_id,
            worker=delivery.worker,
            attempts=Submission.attempts + 1,
            started_at=utcnow(),
            progress="starting",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return None
    if previous:  # the dead run's partial outputs
        get_storage().delete_prefix(output_prefix(submission, previous))
    return Run(db.session.get(Submission, submission_id, populate_existing=True), run_id)


def _update(run: Run, **values: Any) -> bool:
    """Write values to the submission if run still holds it (compare-and-set on its run id)."""
    changed = db.session.execute(
        sa.update(Submission)
        .where(
            Submission.id == run.submission.id,
            Submission.run_id == run.run_id,
            Submission.status == SubmissionStatus.RUNNING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return changed == 1


def succeed(run: Run, results: dict[str, Any], related: list[Any]) -> None:
    """Record success, its results and the rows it produced, in one transaction, if run still holds it."""
    done = _update(
        run, status=SubmissionStatus.SUCCEEDED, results=results, error=None, progress=None, finished_at=utcnow()
    )
    if not done:
        db.session.rollback()
        return
    db.session.add_all(related)
    db.session.commit()
    run.outcome = SubmissionStatus.SUCCEEDED


def fail(run: Run, message: str, results: dict[str, Any] | None = None) -> None:
    """Record failure with the reason a student reads, in one transaction, if run still holds it."""
    db.session.rollback()
    done = _update(
        run, status=SubmissionStatus.FAILED, error=message, results=results, progress=None, finished_at=utcnow()
    )
    db.session.commit()
    if done:
        run.outcome = SubmissionStatus.FAILED


@contextmanager
def recording_failures(run: Run) -> Iterator[None]:
    """Run an evaluation; any error ends in a recorded failure with a reason a student can read.

    A ValidationError records its message, checks and figures (for the staff); a time limit or a bug records an
    internal error (the bug is logged). Nothing propagates: the task always ends with the submission finished.
    """
    try:
        yield
    except ValidationError as exc:
        fail(run, exc.message, {"checks": [c.to_dict() for c in exc.checks], **exc.figures})
    except SoftTimeLimitExceeded:
        fail(run, "The evaluation took too long and was stopped: " + INTERNAL_ERROR)
    except Exception:
        log.exception("%s submission %s failed", run.submission.kind.value, run.submission.id)
        fail(run, INTERNAL_ERROR)


def run(submission_id: int, evaluate: Evaluate, delivery: Delivery = Delivery()) -> None:
    """Claim, evaluate in a scratch folder, record the outcome, keep only a committed run's files, notify.

    evaluate(run) returns the results to record and the rows to add with them, or raises (a ValidationError
    for a file a student must fix). A run that lost its claim meanwhile deletes its own files and sends nothing.
    """
    current = claim(submission_id, delivery)
    if current is None:
        return
    kind = current.submission.kind.value
    with scratch_dir(f"{kind}-{submission_id}-") as work:
        current.work = work
        with recording_failures(current):
            results, related = evaluate(current)
            succeed(current, results, related)
    if current.outcome is not SubmissionStatus.SUCCEEDED:
        for key in current.stored:
            get_storage().delete(key)
    if current.outcome is None:
        log.info("submission %s: run %s lost its claim; its outputs were removed", submission_id, current.run_id)
        return
    if current.outcome is SubmissionStatus.SUCCEEDED:
        for key in current.obsolete:
            get_storage().delete(key)
        leaderboard_cache.clear_leaderboard()
    db.session.expire_all()
    notify(db.session.get(Submission, submission_id))


def notify(submission: Submission) -> None:
    """Mail the team how its upload ended."""
    ok = submission.status is SubmissionStatus.SUCCEEDED
    word = OUTCOME_WORDS[submission.kind] if ok else "refused"
    subject = f"[SRS] {submission.kind.value.capitalize()} #{submission.id} {word}"
    mail.mail_team(submission.team, subject, f"{submission.kind.value}_result", submission=submission, accepted=ok)


def sweep() -> dict[str, int]:
    """Send what never reached the broker, fail runs whose retry can no longer come, clean leftover folders.

    A message handed to Redis is kept until a worker acknowledges it and handed back if that worker dies, so
    a queued submission with enqueued_at set is waiting, not lost, and is never sent twice. A running one is
    failed after SUBMISSION_STALE_RUNNING_SECONDS, which config derives from the broker's visibility timeout
    plus one more run, so the broker's retry of a dead worker host's message comes first.
    """
    cfg = current_app.config
    never_sent = db.session.scalars(
        sa.select(Submission).where(Submission.status == SubmissionStatus.QUEUED, Submission.enqueued_at.is_(None))
    ).all()
    requeued = sum(enqueue(s) for s in never_sent)
    running_before = utcnow() - timedelta(seconds=cfg["SUBMISSION_STALE_RUNNING_SECONDS"])
    stale = db.session.scalars(
        sa.select(Submission).where(
            Submission.status == SubmissionStatus.RUNNING, Submission.started_at < running_before
        )
    ).all()
    failed = 0
    for submission in stale:
        dead = Run(submission, submission.run_id)
        fail(dead, "The evaluation took too long and was stopped: " + INTERNAL_ERROR)
        if dead.outcome is SubmissionStatus.FAILED:
            failed += 1
            if dead.run_id:
                get_storage().delete_prefix(output_prefix(submission, dead.run_id))
    return {"requeued": requeued, "failed": failed, "cleaned": clean_scratch(cfg["SUBMISSION_STALE_RUNNING_SECONDS"])}


def clean_scratch(older_than: float) -> int:
    """Remove scratch folders older than older_than seconds (left by hard-killed processes); returns how many."""
    root = Path(current_app.config["TEMPORARY_UPLOAD_FOLDER"])
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for path in root.glob(SCRATCH_PREFIX + "*"):
        if path.is_dir() and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
