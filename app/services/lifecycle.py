"""The life of one evaluation, the same for every kind of upload: enqueue, claim, evaluate, record, notify; and
the sweeper that picks up what fell between the chairs.

The claim rule, the compare-and-set that records an outcome and the sweep are written once, over any RunState
row (a submission, a baseline run): `send`, `claim_row`, `finish`, `sweep_rows`. The rest is the submissions'."""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from billiard.exceptions import SoftTimeLimitExceeded
from flask import current_app

from app import clock
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import RunState, Submission, SubmissionKind, SubmissionStatus
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


class Stopwatch:
    """Where a run's time goes: seconds per stage, in the order the stages began, when it started and committed
    (epoch seconds, to set against a client's clock) and the CPU time (all threads) it took until then, a
    steadier figure than the wall clock on a busy host. Logged once per run (see log_timings)."""

    def __init__(self, stage: str) -> None:
        self.started = time.time()
        self.committed: float | None = None
        self.cpu: float | None = None
        self.seconds: dict[str, float] = {}
        self._stage, self._since, self._cpu_start = stage, time.perf_counter(), time.process_time()

    def commit_done(self) -> None:
        self.committed, self.cpu = time.time(), time.process_time() - self._cpu_start

    @property
    def stage(self) -> str:
        """The stage under way."""
        return self._stage

    def lap(self, stage: str) -> None:
        """End the current stage (its time added to what it already had) and begin `stage`."""
        now = time.perf_counter()
        self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + now - self._since
        self._stage, self._since = stage, now

    def as_dict(self) -> dict[str, Any]:
        self.lap(self._stage)
        return {
            "started": round(self.started, 4),
            "committed": round(self.committed, 4) if self.committed else None,
            "cpu": round(self.cpu, 4) if self.cpu is not None else None,
            "seconds": {stage: round(value, 4) for stage, value in self.seconds.items()},
        }


@dataclass
class Run:
    """One run of an evaluation that holds its submission's claim; what it stores is its own until committed."""

    submission: Submission
    run_id: str
    work: Path | None = None
    watch: Stopwatch = field(default_factory=lambda: Stopwatch("evaluating"))
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

    def publish(self, results: dict[str, Any]) -> None:
        """Show results that can no longer change while the run goes on (its status stays running): what a student
        waits for, before the outputs only later steps need. A failure afterwards replaces them with its reason."""
        stage = self.watch.stage
        self.watch.lap("progress updates")
        _update(self, results=results)
        db.session.commit()
        self.watch.lap(stage)

    def progress(self, stage: str) -> None:
        """Show the stage on the status page, while this run still holds the submission."""
        self.watch.lap("progress updates")
        _update(self, progress=stage)
        db.session.commit()
        self.watch.lap(stage)


Evaluate = Callable[[Run], tuple[dict[str, Any], list[Any]]]


def output_prefix(submission: Submission, run_id: str) -> str:
    return f"{submission.kind.value}s/{submission.id}/{run_id}"


def send(row: RunState, task_name: str, args: list[Any], label: str) -> bool:
    """Hand the row's task to a worker and note when; if the broker does not answer, it stays for the sweeper."""
    try:
        send_task(task_name, args)
    except Exception as exc:  # broker down: the row is safe, the sweeper enqueues it later
        log.warning("could not enqueue %s: %s", label, exc)
        return False
    row.enqueued_at = clock.now()
    db.session.commit()
    return True


def enqueue(submission: Submission) -> bool:
    """Hand the submission to a worker. If the broker does not answer, it stays queued for the sweeper."""
    return send(submission, TASK_NAMES[submission.kind], [submission.id], f"submission {submission.id}")


def claim_row(
    row: RunState | None, delivery: Delivery, give_up: Callable[[str | None], None], **values: Any
) -> str | None:
    """Take the row for one run, atomically: the new run's id, or None when this message must leave it alone.

    The rule: a queued row goes to the first message that claims it (one compare-and-set UPDATE on its status,
    which also writes a fresh run id and `values`). A running one is taken over only by the very message that
    started the current run coming back from the broker flagged as redelivered: Celery hands a message back
    when its worker process died (acks_late, reject_on_worker_lost) or when Redis's visibility timeout passed
    without an acknowledgement, which is longer than the task's hard time limit, so that run is dead. That
    retry is allowed while attempts < MAX_ATTEMPTS; after that give_up(the dead run's id) records the failure.
    Any other message (a duplicate, or one for a finished row) exits without touching anything.
    """
    if row is None or row.status.finished:
        db.session.rollback()
        return None
    model = type(row)
    expected = [model.id == row.id, model.status == row.status]
    if row.status is SubmissionStatus.RUNNING:
        own_message_back = (
            delivery.redelivered and delivery.message_id is not None and delivery.message_id == row.task_id
        )
        if not own_message_back:
            log.info("%s %s is running under another run: duplicate message ignored", model.__name__, row.id)
            db.session.rollback()
            return None
        if row.attempts >= MAX_ATTEMPTS:
            give_up(row.run_id)
            return None
        expected.append(model.run_id == row.run_id)
    run_id = uuid.uuid4().hex
    claimed = db.session.execute(
        sa.update(model)
        .where(*expected)
        .values(
            status=SubmissionStatus.RUNNING,
            run_id=run_id,
            task_id=delivery.message_id,
            worker=delivery.worker,
            attempts=model.attempts + 1,
            started_at=clock.now(),
            **values,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return run_id if claimed == 1 else None


def hold(model: type[RunState], row_id: int, run_id: str | None, **values: Any) -> bool:
    """Write values to the row if run_id still holds it (compare-and-set on its run id); not committed."""
    changed = db.session.execute(
        sa.update(model)
        .where(*model.held_by(row_id, run_id))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return changed == 1


def finish(
    model: type[RunState],
    row_id: int,
    run_id: str | None,
    status: SubmissionStatus,
    related: Iterable[Any] = (),
    **values: Any,
) -> bool:
    """Record how run_id ended, with the rows it produced, in one transaction, if it still holds the row.

    True when recorded; otherwise nothing is written (another run or the sweeper took the row away).
    """
    if not hold(model, row_id, run_id, status=status, finished_at=clock.now(), **values):
        db.session.rollback()
        return False
    db.session.add_all(related)
    db.session.commit()
    return True


def sweep_rows(
    model: type[RunState], enqueue_row: Callable[[Any], bool], fail_stale: Callable[[Any], bool]
) -> tuple[int, int]:
    """Send the model's rows that never reached the broker; fail_stale every row still running long after its
    broker's retry could have come. How many were sent, and how many failed.

    A message handed to Redis is kept until a worker acknowledges it and handed back if that worker dies, so
    a queued row with enqueued_at set is waiting, not lost, and is never sent twice. A running one is
    failed after SUBMISSION_STALE_RUNNING_SECONDS, which config derives from the broker's visibility timeout
    plus one more run, so the broker's retry of a dead worker host's message comes first.
    """
    requeued = sum(enqueue_row(row) for row in db.session.scalars(model.never_sent()).all())
    before = clock.now() - timedelta(seconds=current_app.config["SUBMISSION_STALE_RUNNING_SECONDS"])
    failed = sum(fail_stale(row) for row in db.session.scalars(model.running_since_before(before)).all())
    return requeued, failed


def claim(submission_id: int, delivery: Delivery = Delivery()) -> Run | None:
    """Take the submission for one run (claim_row's rule); None when this message must leave it alone.

    A dead run's partial outputs are deleted; a submission whose worker died MAX_ATTEMPTS times is failed and
    its team told.
    """
    submission = db.session.get(Submission, submission_id)
    previous = submission.run_id if submission is not None else None

    def give_up(dead_run_id: str | None) -> None:
        assert submission is not None
        dead = Run(submission, dead_run_id)
        fail(dead, INTERNAL_ERROR)
        if dead.outcome is SubmissionStatus.FAILED:
            notify(dead.submission)

    run_id = claim_row(submission, delivery, give_up, progress="starting")
    if run_id is None:
        return None
    if previous:  # the dead run's partial outputs
        get_storage().delete_prefix(output_prefix(submission, previous))
    return Run(db.session.get(Submission, submission_id, populate_existing=True), run_id)


def _update(run: Run, **values: Any) -> bool:
    """Write values to the submission if run still holds it (compare-and-set on its run id)."""
    return hold(Submission, run.submission.id, run.run_id, **values)


def succeed(run: Run, results: dict[str, Any], related: list[Any]) -> None:
    """Record success, its results and the rows it produced, in one transaction, if run still holds it."""
    if finish(
        Submission,
        run.submission.id,
        run.run_id,
        SubmissionStatus.SUCCEEDED,
        related,
        results=results,
        error=None,
        progress=None,
    ):
        run.outcome = SubmissionStatus.SUCCEEDED


def fail(run: Run, message: str, results: dict[str, Any] | None = None) -> None:
    """Record failure with the reason a student reads, in one transaction, if run still holds it."""
    db.session.rollback()
    if finish(
        Submission,
        run.submission.id,
        run.run_id,
        SubmissionStatus.FAILED,
        error=message,
        results=results,
        progress=None,
    ):
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
    watch = Stopwatch("claim")
    current = claim(submission_id, delivery)
    if current is None:
        return
    current.watch, kind = watch, current.submission.kind.value
    watch.lap("evaluating")
    with scratch_dir(f"{kind}-{submission_id}-") as work:
        current.work = work
        with recording_failures(current):
            results, related = evaluate(current)
            watch.lap("commit")
            succeed(current, results, related)
        watch.commit_done()
    watch.lap("cleanup")
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
    watch.lap("notification")
    db.session.expire_all()
    notify(db.session.get(Submission, submission_id))
    log_timings(current)


def log_timings(run: Run) -> None:
    """One INFO line per run: where its time went (stage: seconds), for the staff and bench/bench_e2e.py."""
    submission = run.submission
    log.info(
        "submission %s (%s, %s) stage seconds: %s",
        submission.id,
        submission.kind.value,
        run.outcome.value if run.outcome else "lost",
        json.dumps(run.watch.as_dict()),
    )


def notify(submission: Submission) -> None:
    """Mail the team how its upload ended."""
    ok = submission.status is SubmissionStatus.SUCCEEDED
    word = OUTCOME_WORDS[submission.kind] if ok else "refused"
    subject = f"[SRS] {submission.kind.value.capitalize()} #{submission.id} {word}"
    mail.mail_team(submission.team, subject, f"{submission.kind.value}_result", submission=submission, accepted=ok)


def sweep() -> dict[str, int]:
    """Send what never reached the broker, fail runs whose retry can no longer come (sweep_rows), clean leftover
    folders."""

    def fail_stale(submission: Submission) -> bool:
        dead = Run(submission, submission.run_id)
        fail(dead, "The evaluation took too long and was stopped: " + INTERNAL_ERROR)
        if dead.outcome is not SubmissionStatus.FAILED:
            return False
        if dead.run_id:
            get_storage().delete_prefix(output_prefix(submission, dead.run_id))
        return True

    requeued, failed = sweep_rows(Submission, enqueue, fail_stale)
    stale_seconds = current_app.config["SUBMISSION_STALE_RUNNING_SECONDS"]
    return {"requeued": requeued, "failed": failed, "cleaned": clean_scratch(stale_seconds)}


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
