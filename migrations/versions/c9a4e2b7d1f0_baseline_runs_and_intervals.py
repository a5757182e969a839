"""baseline runs, confidence intervals on attacks

Revision ID: c9a4e2b7d1f0
Revises: c8d2e4f6a1b3
Create Date: 2026-11-29 03:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c9a4e2b7d1f0"
down_revision = "c8d2e4f6a1b3"
branch_labels = None
depends_on = None

STATUSES = ("queued", "running", "succeeded", "failed")


def upgrade():
    op.create_table(
        "baseline_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("defence_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Enum(*STATUSES, name="submissionstatus", native_enum=False, length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("accuracy", sa.Double(), nullable=True),
        sa.Column("top5_accuracy", sa.Double(), nullable=True),
        sa.Column("roc_auc", sa.Double(), nullable=True),
        sa.Column("intervals", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["defence_id"], ["defence.id"], name=op.f("fk_baseline_run_defence_id_defence"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baseline_run")),
        sa.UniqueConstraint("defence_id", name=op.f("uq_baseline_run_defence_id")),
    )
    with op.batch_alter_table("baseline_run") as batch_op:
        batch_op.create_index(batch_op.f("ix_baseline_run_status"), ["status"], unique=False)
    with op.batch_alter_table("attack") as batch_op:
        batch_op.add_column(sa.Column("intervals", sa.JSON(), nullable=True))
    # defence.overheads comes with the reference revision (c8d2e4f6a1b3), which this one follows.


def downgrade():
    with op.batch_alter_table("attack") as batch_op:
        batch_op.drop_column("intervals")
    with op.batch_alter_table("baseline_run") as batch_op:
        batch_op.drop_index(batch_op.f("ix_baseline_run_status"))
    op.drop_table("baseline_run")
