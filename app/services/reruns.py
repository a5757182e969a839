"""Staff re-runs: evaluate a finished submission again through the lifecycle, keeping the earlier run in a history.

The rule for defences: a round pins the Defence row (and so the files) it was generated with, and a re-run
never changes a pinned row. A re-run of an upload that has no Defence row yet creates one; one whose row no
round pinned updates that row in place (same id, new sets, old files deleted once the re-run succeeded); one
whose row a round pinned leaves it exactly as it is and throws the re-run's sets away (its results are still
recorded on the submission and in the history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import Attack, Defence, Match, Submission, SubmissionRun, SubmissionStatus
from app.services import audit, leaderboard_cache, lifecycle
from app.services.errors import CompetitionError, Conflict, Invalid, NotFound
from app.storage import get_storage

# Columns of Defence a re-run of an unpinned defence replaces: everything but its identity.
_IDENTITY = {"id", "team_id", "submission_id", "created_at"}


class RerunRefused(Conflict):
    """A submission that cannot be re-run now (still queued or running, its upload gone, re-run meanwhile)."""


@dataclass
class BulkRerun:
    """What a bulk re-run did: the submissions queued again and the ones skipped, with why."""

    rerun: list[Submission] = field(default_factory=list)
    skipped: list[tuple[Submission, str]] = field(default_factory=list)


def history(submission_id: int) -> list[SubmissionRun]:
    """The earlier runs of a submission, the first first."""
    return list(
        db.session.scalars(
            sa.select(SubmissionRun).where(SubmissionRun.submission_id == submission_id).order_by(SubmissionRun.number)
        )
    )


def rerun_submission(submission_id: int, requested_by: str) -> Submission:
    """Archive the submission's finished run, queue it again with fresh attempts, commit, enqueue (one staff action).

    An attack's scores are removed with the archived run (its results keep them) and come back when the re-run
    succeeds; a defence's row is handled by keep_or_replace when the re-run records its result.
    Raises NotFound for no such submission; RerunRefused when it is still queued or running, or its upload is gone.
    """
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"There is no submission #{submission_id}.")
    if not submission.status.finished:
        raise RerunRefused(
            f"Submission #{submission.id} is still {submission.status.value}: re-run it once it has finished."
        )
    if not submission.file_key or not get_storage().exists(submission.file_key):
        raise RerunRefused(f"The upload of submission #{submission.id} is no longer stored: it cannot be re-run.")
    number = 1 + (
        db.session.scalar(
            sa.select(sa.func.max(SubmissionRun.number)).where(SubmissionRun.submission_id == submission.id)
        )
        or 0
    )
    archived = SubmissionRun(
        submission_id=submission.id,
        number=number,
        results=submission.results,
        rerun_by=requested_by[:64],
        **submission.run_record(),
    )
    # Compare-and-set on the finished run: of two staff clicking at once, one re-runs and the other is told.
    reset = db.session.execute(
        sa.update(Submission)
        .where(
            Submission.id == submission.id,
            Submission.status == submission.status,
            Submission.run_id.is_(None) if submission.run_id is None else Submission.run_id == submission.run_id,
        )
        # Fresh attempts (MAX_ATTEMPTS counts per run) and no run id: the next claim must not delete the finished
        # run's outputs (a pinned defence's sets).
        .values(results=None, progress=None, **Submission.fresh())
        .execution_options(synchronize_session=False)
    ).rowcount
    if reset != 1:
        db.session.rollback()
        raise RerunRefused(f"Submission #{submission.id} was re-run by someone else meanwhile.")
    db.session.add(archived)
    audit.record(
        requested_by,
        "rerun",
        {"status": archived.status.value, "run": number},
        {"status": SubmissionStatus.QUEUED.value},
        target=f"submission {submission.id}",
    )
    db.session.execute(sa.delete(Attack).where(Attack.submission_id == submission.id))
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # the same history number taken by a concurrent re-run
        db.session.rollback()
        raise RerunRefused(f"Submission #{submission.id} was re-run by someone else meanwhile.") from exc
    leaderboard_cache.clear_leaderboard()
    db.session.refresh(submission)
    lifecycle.enqueue(submission)  # a broker that does not answer leaves it queued for the sweeper
    return submission


DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")


def parse_since(text: str) -> datetime:
    """A UTC date typed by staff (YYYY-MM-DD, optionally HH:MM); Invalid saying how to write it otherwise."""
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise Invalid(f"{text[:32]!r} is not a date: write it as YYYY-MM-DD, optionally followed by HH:MM (UTC).")


def failed_since(since: datetime) -> list[Submission]:
    """Failed submissions that finished at or after since (naive UTC), oldest first."""
    return list(
        db.session.scalars(
            sa.select(Submission)
            .where(Submission.status == SubmissionStatus.FAILED, Submission.finished_at >= since)
            .order_by(Submission.id)
        )
    )


def rerun_failed_since(since: datetime, requested_by: str) -> BulkRerun:
    """Re-run every submission that failed at or after since (one staff action); those that cannot are skipped."""
    done = BulkRerun()
    for submission in failed_since(since):
        try:
            done.rerun.append(rerun_submission(submission.id, requested_by))
        except CompetitionError as exc:
            done.skipped.append((submission, exc.message))
    return done


def previous_seed(submission_id: int) -> int | None:
    """The split seed of the upload's Defence row, if an earlier run made one: a re-run splits the same way."""
    return db.session.scalar(sa.select(Defence.seed).where(Defence.submission_id == submission_id))


def pinning_rounds(defence_id: int) -> list[int]:
    """The rounds whose matches pinned this defence."""
    rounds = sa.select(Match.round).where(Match.defence_id == defence_id).distinct().order_by(Match.round)
    return list(db.session.scalars(rounds))


def keep_or_replace(
    run: lifecycle.Run, results: dict[str, Any], defence: Defence
) -> tuple[dict[str, Any], list[Defence]]:
    """The results and rows a defence run records: its new Defence, or the upload's existing row kept or updated.

    See the module docstring for the rule. Files that lose their row are deleted only once the run committed.
    """
    existing = db.session.scalar(sa.select(Defence).where(Defence.submission_id == defence.submission_id))
    if existing is None:
        return results, [defence]
    new_keys = [defence.train_key, defence.test_key, defence.verification_key]
    rounds = pinning_rounds(existing.id)
    if rounds:
        run.obsolete.extend(new_keys)
        kept = {"defence_id": existing.id, "rounds": rounds, "utility_score": existing.utility_score}
        return {**results, "kept_defence": kept}, []
    old_keys = {existing.train_key, existing.test_key, existing.verification_key}
    for column in sa.inspect(Defence).column_attrs:
        if column.key not in _IDENTITY:
            setattr(existing, column.key, getattr(defence, column.key))
    run.obsolete.extend(sorted(old_keys - set(new_keys)))
    return results, [existing]
