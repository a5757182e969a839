"""submission run history and attack provenance: re-runs keep earlier results, scores say what they came from

Revision ID: dc481cb375b5
Revises: f18255a1c6d0
Create Date: 2026-11-29 02:48:28.604125

"""

import sqlalchemy as sa
from alembic import op

revision = "dc481cb375b5"
down_revision = "f18255a1c6d0"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "submission_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "running", "succeeded", "failed", name="submissionstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("rerun_by", sa.String(length=64), nullable=False),
        sa.Column("rerun_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_submission_run_submission_id_submission"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_run")),
        sa.UniqueConstraint("submission_id", "number", name=op.f("uq_submission_run_submission_id")),
    )
    with op.batch_alter_table("submission_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submission_run_submission_id"), ["submission_id"], unique=False)

    with op.batch_alter_table("attack", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provenance", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("attack", schema=None) as batch_op:
        batch_op.drop_column("provenance")

    with op.batch_alter_table("submission_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_run_submission_id"))

    op.drop_table("submission_run")
