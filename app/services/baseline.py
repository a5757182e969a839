"""The platform's baseline attack on every accepted defence: queued with the defence, run on its own queue,
claimed once, recorded. Its failures are kept for the staff and never touch the defence."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

import sqlalchemy as sa
from billiard.exceptions import SoftTimeLimitExceeded
from flask import current_app

from app.evaluation.baseline import run_baseline
from app.evaluation.figures import cell_counts
from app.extensions import db
from app.models import BaselineRun, Defence, Submission, SubmissionStatus
from app.services import leaderboard_cache, lifecycle
from app.services.lifecycle import Delivery
from app.storage import get_storage

log = logging.getLogger(__name__)

TASK_NAME = "srs.run_baseline"
ERROR_LIMIT = 2000


def enqueue(row: BaselineRun) -> bool:
    """Hand the run to a baseline worker; if the broker does not answer it stays queued for the sweeper."""
    return lifecycle.send(row, TASK_NAME, [row.defence_id], f"the baseline of defence {row.defence_id}")


def enqueue_for_submission(submission_id: int) -> bool:
    """Enqueue the baseline of the defence a submission produced, if it has one never sent; True if sent."""
    row = db.session.scalar(
        sa.select(BaselineRun)
        .join(Defence, Defence.id == BaselineRun.defence_id)
        .where(
            Defence.submission_id == submission_id,
            BaselineRun.status == SubmissionStatus.QUEUED,
            BaselineRun.enqueued_at.is_(None),
        )
    )
    return enqueue(row) if row is not None else False


def queue_missing(retry_failed: bool = False) -> int:
    """Give every defence without a baseline run one (and, with retry_failed, re-queue failed runs); how many."""
    missing = db.session.scalars(
        sa.select(Defence).outerjoin(BaselineRun, BaselineRun.defence_id == Defence.id).where(BaselineRun.id.is_(None))
    ).all()
    rows = [BaselineRun(defence=d) for d in missing]
    db.session.add_all(rows)
    if retry_failed:
        failed = db.session.scalars(sa.select(BaselineRun).where(BaselineRun.status == SubmissionStatus.FAILED)).all()
        for row in failed:
            for name, value in BaselineRun.fresh().items():
                setattr(row, name, value)
        rows += failed
    db.session.commit()
    for row in rows:
        enqueue(row)
    return len(rows)


def claim(defence_id: int, delivery: Delivery = Delivery()) -> tuple[BaselineRun, str] | None:
    """Take the defence's baseline run for this message (lifecycle.claim_row's rule, as for submissions); None
    when the message must leave it alone. A run whose worker died lifecycle.MAX_ATTEMPTS times is failed."""
    row = db.session.scalar(sa.select(BaselineRun).where(BaselineRun.defence_id == defence_id))

    def give_up(dead_run_id: str | None) -> None:
        assert row is not None
        _finish(row.id, dead_run_id, SubmissionStatus.FAILED, error="The worker died twice while running it.")

    run_id = lifecycle.claim_row(row, delivery, give_up)
    if row is None or run_id is None:
        return None
    return db.session.get(BaselineRun, row.id, populate_existing=True), run_id


def _finish(row_id: int, run_id: str | None, status: SubmissionStatus, **values: Any) -> bool:
    """Record the outcome if run_id still holds the run (compare-and-set); True when recorded."""
    return lifecycle.finish(BaselineRun, row_id, run_id, status, **values)


def run(defence_id: int, delivery: Delivery = Delivery()) -> None:
    """Claim the defence's baseline run, attack the defence's own sets, record the scores or the failure."""
    claimed = claim(defence_id, delivery)
    if claimed is None:
        return
    row, run_id = claimed
    defence, storage = row.defence, get_storage()
    try:
        with ExitStack() as paths:
            train, test, verification = (
                paths.enter_context(storage.local_path(key))
                for key in (defence.train_key, defence.test_key, defence.verification_key)
            )
            result = run_baseline(
                train,
                test,
                verification,
                nb_classes=current_app.config["NB_CLASSES"],
                seed=defence.seed,
                team_id=defence.team_id,
            )
    except SoftTimeLimitExceeded:
        db.session.rollback()
        _finish(row.id, run_id, SubmissionStatus.FAILED, error="Stopped at the task time limit (TASK_TIME_LIMIT).")
        return
    except Exception as exc:  # recorded for the staff; the defence stays accepted
        log.exception("baseline attack on defence %s failed", defence_id)
        db.session.rollback()
        _finish(row.id, run_id, SubmissionStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT])
        return
    details = result.to_dict()
    # Where the defence leaks, cell by cell (the defence's page draws it); runs recorded before have none.
    per_cell = cell_counts(result.proba, result.true_cells, current_app.config["NB_CLASSES"])
    recorded = _finish(
        row.id,
        run_id,
        SubmissionStatus.SUCCEEDED,
        error=None,
        accuracy=result.score.accuracy,
        top5_accuracy=result.score.top5_accuracy,
        roc_auc=result.score.roc_auc,
        intervals=details.pop("intervals"),
        details={
            **{k: details[k] for k in ("nb_test_captures", "nb_train_captures", "nb_features", "seconds")},
            "per_cell": {"captures": per_cell.captures, "recognised": per_cell.recognised},
        },
    )
    if recorded:
        leaderboard_cache.clear_leaderboard()  # the trade-off plot and mode read the baseline


def sweep() -> dict[str, int]:
    """Send runs that never reached the broker; fail runs still running long after any retry could come."""
    requeued, failed = lifecycle.sweep_rows(
        BaselineRun,
        enqueue,
        lambda row: _finish(
            row.id, row.run_id, SubmissionStatus.FAILED, error="Still running long after its time limit."
        ),
    )
    return {"baseline_requeued": requeued, "baseline_failed": failed}


def for_submission(submission: Submission) -> BaselineRun | None:
    """The baseline run of the defence a submission produced (None for attacks and refused defences)."""
    return db.session.scalar(
        sa.select(BaselineRun)
        .join(Defence, Defence.id == BaselineRun.defence_id)
        .where(Defence.submission_id == submission.id)
    )


def as_dict(row: BaselineRun | None) -> dict[str, Any] | None:
    """The JSON form of a baseline run (the API's `baseline` object); None without a run."""
    if row is None:
        return None
    finished = row.status is SubmissionStatus.SUCCEEDED
    return {
        "status": row.status.value,
        "accuracy": row.accuracy if finished else None,
        "top5_accuracy": row.top5_accuracy if finished else None,
        "roc_auc": row.roc_auc if finished else None,
        "intervals": row.intervals if finished else None,
        "nb_test_captures": (row.details or {}).get("nb_test_captures") if finished else None,
        "seconds": (row.details or {}).get("seconds") if finished else None,
        "finished_at": row.finished_at.isoformat() + "Z" if row.finished_at else None,
        # Only a lower bound on the leakage: real attackers may do better. A failure's reason (a platform
        # fault) is for the staff's dashboard, not here.
        "lower_bound": True,
    }


def latest_baselines(defence_ids: list[int]) -> dict[int, BaselineRun]:
    """The baseline runs of these defences, by defence id."""
    if not defence_ids:
        return {}
    rows = db.session.scalars(sa.select(BaselineRun).where(BaselineRun.defence_id.in_(defence_ids)))
    return {row.defence_id: row for row in rows}
