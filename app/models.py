"""Database models: accounts, teams, the competition state, rounds, matches, submissions and their results."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import generate_password_hash

from app import clock
from app.extensions import db, login

TEAM_SIZE = 2
# Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand is not mistyped.
JOIN_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
JOIN_CODE_GROUPS = 3  # three groups of four: 60 random bits


def new_join_code() -> str:
    """A random team join code such as 7K2M-QX9D-R4TB."""
    groups = ("".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(4)) for _ in range(JOIN_CODE_GROUPS))
    return "-".join(groups)


class Phase(enum.StrEnum):
    """What students may upload now."""

    NONE = "None"
    DEFENCE = "Defence"
    ATTACK = "Attack"
    BOTH = "Both"

    @property
    def allows_defence(self) -> bool:
        return self in (Phase.DEFENCE, Phase.BOTH)

    @property
    def allows_attack(self) -> bool:
        return self in (Phase.ATTACK, Phase.BOTH)


class SubmissionKind(enum.StrEnum):
    DEFENCE = "defence"
    ATTACK = "attack"

    @property
    def verb(self) -> str:
        return "upload a defence" if self is SubmissionKind.DEFENCE else "attack"


class SubmissionStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (SubmissionStatus.SUCCEEDED, SubmissionStatus.FAILED)


def canonical_username(username: str) -> str:
    """Usernames are unique after trimming and case-folding: 'Alice ' and 'alice' are one account."""
    return username.strip().casefold()


def _status_column(**options: Any) -> Mapped[SubmissionStatus]:
    return mapped_column(
        sa.Enum(SubmissionStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        **options,
    )


class RunRecord:
    """What one run of an evaluation leaves: how it ended, and who ran it (the run id its claim wrote, the broker
    message that started it, the Celery node that took it)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[SubmissionStatus] = _status_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    run_id: Mapped[str | None] = mapped_column(sa.String(32))
    task_id: Mapped[str | None] = mapped_column(sa.String(64))
    worker: Mapped[str | None] = mapped_column(sa.String(255))  # Celery node name of the run ("celery@host")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    def run_record(self) -> dict[str, Any]:
        """This row's run columns, to keep them in another RunRecord (a run archived before a re-run)."""
        return {name: getattr(self, name) for name in RUN_RECORD_COLUMNS}


RUN_RECORD_COLUMNS = ("status", "error", "attempts", "run_id", "task_id", "worker", "started_at", "finished_at")


class RunState(RunRecord):
    """A row a worker claims and runs: queued → running → succeeded | failed (app.services.lifecycle's rule).

    A queued row with no enqueued_at never reached the broker; started_at is when the current run claimed it.
    """

    status: Mapped[SubmissionStatus] = _status_column(default=SubmissionStatus.QUEUED, index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    enqueued_at: Mapped[datetime | None]

    @staticmethod
    def fresh() -> dict[str, Any]:
        """The run columns of a row queued again from scratch: no run, no attempt, not sent yet."""
        return {
            **dict.fromkeys(RUN_RECORD_COLUMNS),
            "status": SubmissionStatus.QUEUED,
            "attempts": 0,
            "enqueued_at": None,
        }

    @classmethod
    def held_by(cls, row_id: int, run_id: str | None) -> list[sa.ColumnElement[bool]]:
        """The condition under which run_id still holds the row: it is running, under that run."""
        return [
            cls.id == row_id,
            cls.run_id == run_id,
            cls.status == SubmissionStatus.RUNNING,
        ]

    @classmethod
    def never_sent(cls) -> sa.Select[Any]:
        """Queued rows whose task never reached the broker."""
        return sa.select(cls).where(cls.status == SubmissionStatus.QUEUED, cls.enqueued_at.is_(None))

    @classmethod
    def running_since_before(cls, moment: datetime) -> sa.Select[Any]:
        """Rows whose current run started before moment and has not finished."""
        return sa.select(cls).where(cls.status == SubmissionStatus.RUNNING, cls.started_at < moment)


class Team(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Members hand it to a teammate: joining a team needs it (the team's consent).
    join_code: Mapped[str] = mapped_column(sa.String(32), default=new_join_code)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    members: Mapped[list[User]] = relationship(back_populates="team", order_by="User.id")

    @property
    def is_full(self) -> bool:
        return len(self.members) >= TEAM_SIZE

    @property
    def is_admin_team(self) -> bool:
        return any(m.is_admin for m in self.members)

    def __repr__(self) -> str:
        return f"<Team {self.name}>"


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    username_canonical: Mapped[str] = mapped_column(sa.String(64), unique=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    sciper: Mapped[str | None] = mapped_column(sa.String(6), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("team.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    team: Mapped[Team | None] = relationship(back_populates="members")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    @property
    def session_generation(self) -> str:
        """Changes whenever the password does: part of the id kept in sessions and remember-me cookies."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def get_id(self) -> str:
        """The id Flask-Login stores in the session and the remember-me cookie: "<id>:<session generation>", so
        that a password change or reset ends every session and cookie made with the old password."""
        return f"{self.id}:{self.session_generation}"

    def __repr__(self) -> str:
        return f"<User {self.username}>"


@login.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a session or remember-me cookie, while its password is the one it was made with."""
    user_id, _, generation = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(generation, user.session_generation):
        return None
    return user


class ApiToken(db.Model):
    """A bearer token for /api/v1; only its sha256 is stored."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship()


class CompetitionState(db.Model):
    """The single row holding the runtime state every web process and worker must agree on."""

    id: Mapped[int] = mapped_column(primary_key=True)
    current_round: Mapped[int] = mapped_column(default=0)
    phase: Mapped[Phase] = mapped_column(
        sa.Enum(Phase, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=Phase.NONE,
    )
    registration_open: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class Submission(RunState, db.Model):
    """One uploaded file and the life of its evaluation: queued → running → succeeded | failed."""

    kind: Mapped[SubmissionKind] = mapped_column(
        sa.Enum(SubmissionKind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("team.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    round: Mapped[int] = mapped_column(default=0)
    original_filename: Mapped[str] = mapped_column(sa.String(255))
    file_key: Mapped[str | None] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int]
    progress: Mapped[str | None] = mapped_column(sa.String(64))
    results: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)

    team: Mapped[Team] = relationship()
    user: Mapped[User] = relationship()


class Reference(db.Model):
    """Undefended traffic that defences are measured against: its per-cell medians, computed once per file.

    The current reference is the active one activated last; a defence keeps the one it was measured against.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    # One row per file: two workers computing the same file at once cannot both insert it.
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source: Mapped[str] = mapped_column(sa.String(255))  # file name or path it was read from
    medians: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # CellMedians.to_dict()
    nb_cells: Mapped[int]
    nb_captures: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)
    activated_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by: Mapped[str | None] = mapped_column(sa.String(64))  # username; None when the worker set it up
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Defence(db.Model):
    """A defence that passed every check: its utility and the keys of its three generated sets."""

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("team.id"), index=True)
    submission_id: Mapped[int] = mapped_column(sa.ForeignKey("submission.id"), unique=True)
    utility_score: Mapped[float]
    utility: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    train_key: Mapped[str] = mapped_column(sa.String(255))
    test_key: Mapped[str] = mapped_column(sa.String(255))
    verification_key: Mapped[str] = mapped_column(sa.String(255))
    train_size: Mapped[int] = mapped_column(default=0)
    test_size: Mapped[int] = mapped_column(default=0)
    # Overheads against the reference in percent (bandwidth_in/out/total, time; per-cell figures stay in the
    # submission's results); None for defences measured before references existed.
    overheads: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    reference_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reference.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    team: Mapped[Team] = relationship()
    submission: Mapped[Submission] = relationship()
    reference: Mapped[Reference | None] = relationship()
    # Deleting a defence deletes its baseline run (the foreign key cascades too).
    baseline: Mapped[BaselineRun | None] = relationship(
        back_populates="defence", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )


class BaselineRun(RunState, db.Model):
    """The platform's baseline attack on one accepted defence: its privacy estimate, queued → running → done.

    Its failure never touches the defence: it is recorded here (error) for the staff.
    """

    defence_id: Mapped[int] = mapped_column(sa.ForeignKey("defence.id", ondelete="CASCADE"), unique=True)
    accuracy: Mapped[float | None]
    top5_accuracy: Mapped[float | None]
    roc_auc: Mapped[float | None]
    intervals: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # ScoreIntervals.to_dict()
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # captures, features, seconds

    defence: Mapped[Defence] = relationship(back_populates="baseline")


class Round(db.Model):
    """A generated round: its number and the seed its matches were drawn with."""

    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Set when the round ends (the next one is generated, or staff close it): its final scores are published.
    closed_at: Mapped[datetime | None]

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class RoundSet(db.Model):
    """One attacker's sets of a defence in a round: the defence's test pool under the attacker's own capture ids,
    order and public subset (drawn with `seed`), prepared by a worker, or by the download that needs it first.

    The train set is always the defence's own: a test-pool capture never appears in a train set, in any round.
    Rows with no match_id are older: one fresh split of a defence per round, shared by its attackers (a split
    that put test-pool captures into train sets); they stay downloadable as they were handed out.
    """

    PREPARING, READY, FAILED = "preparing", "ready", "failed"

    id: Mapped[int] = mapped_column(primary_key=True)
    round: Mapped[int] = mapped_column(sa.ForeignKey("round.number"), index=True)
    defence_id: Mapped[int] = mapped_column(sa.ForeignKey("defence.id"))
    match_id: Mapped[int | None] = mapped_column(sa.ForeignKey("match.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=PREPARING)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    train_key: Mapped[str | None] = mapped_column(sa.String(255))
    test_key: Mapped[str | None] = mapped_column(sa.String(255))
    verification_key: Mapped[str | None] = mapped_column(sa.String(255))
    train_size: Mapped[int] = mapped_column(default=0)
    test_size: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    enqueued_at: Mapped[datetime | None]  # None: its task has not reached the broker yet (the sweeper sends it)
    finished_at: Mapped[datetime | None]

    defence: Mapped[Defence] = relationship()
    match: Mapped[Match | None] = relationship()


class Match(db.Model):
    """Attacker attacks defender in a round, against the defence pinned when the round was generated."""

    __table_args__ = (sa.UniqueConstraint("round", "attacker_team_id", "defender_team_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round: Mapped[int] = mapped_column(sa.ForeignKey("round.number"), index=True)
    attacker_team_id: Mapped[int] = mapped_column(sa.ForeignKey("team.id"), index=True)
    defender_team_id: Mapped[int] = mapped_column(sa.ForeignKey("team.id"), index=True)
    defence_id: Mapped[int] = mapped_column(sa.ForeignKey("defence.id"))

    attacker: Mapped[Team] = relationship(foreign_keys=[attacker_team_id])
    defender: Mapped[Team] = relationship(foreign_keys=[defender_team_id])
    defence: Mapped[Defence] = relationship()


class Attack(db.Model):
    """The scores of one attack upload against one match; the latest one of a match counts."""

    SCORE_NAMES = ("accuracy", "top5_accuracy", "roc_auc")

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(sa.ForeignKey("match.id"), index=True)
    submission_id: Mapped[int] = mapped_column(sa.ForeignKey("submission.id"), index=True)
    accuracy: Mapped[float]
    top5_accuracy: Mapped[float]
    roc_auc: Mapped[float]
    # What the score was computed from: upload_sha256, verification_sha256, split_seed, scorer_version, ...
    provenance: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    intervals: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # 95 % bootstrap: ScoreIntervals.to_dict()
    # Scores on the test set's public subset ({accuracy, top5_accuracy, roc_auc}): the only ones shown while
    # the round is open. The columns above are the final scores (on the private captures: see provenance
    # "subset"), published when it closes.
    public_scores: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    match: Mapped[Match] = relationship()


class AuditEntry(db.Model):
    """One staff action: who (a user, or `cli` / `scheduler`), when, what, and the values before and after."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    target: Mapped[str | None] = mapped_column(sa.String(255))
    before: Mapped[Any | None] = mapped_column(sa.JSON)
    after: Mapped[Any | None] = mapped_column(sa.JSON)
    note: Mapped[str | None] = mapped_column(sa.String(255))


class ScheduledAction(db.Model):
    """A staff action planned for a time (UTC): applied once by the beat task, `applied_at` set when claimed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[str] = mapped_column(sa.String(32), default="")
    due_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    applied_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(sa.String(255))


class Announcement(db.Model):
    """A message from the staff: a banner for logged-in users until it expires, and an e-mail to students."""

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    author: Mapped[str] = mapped_column(sa.String(64))


class SubmissionRun(RunRecord, db.Model):
    """A finished run of a submission's evaluation, kept when staff re-run it (run 1 is the first evaluation)."""

    __table_args__ = (sa.UniqueConstraint("submission_id", "number"),)

    submission_id: Mapped[int] = mapped_column(sa.ForeignKey("submission.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    results: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # Who asked for the run that replaced this one, and when: a username, or "cli".
    rerun_by: Mapped[str] = mapped_column(sa.String(64))
    rerun_at: Mapped[datetime] = mapped_column(default=clock.now)

    submission: Mapped[Submission] = relationship()
