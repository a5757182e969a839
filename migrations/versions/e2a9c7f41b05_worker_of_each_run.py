"""the worker that ran each evaluation (submission, submission_run, baseline_run .worker); round_set.enqueued_at

Revision ID: e2a9c7f41b05
Revises: c4d8e2f1a7b3
Create Date: 2026-12-06 20:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "e2a9c7f41b05"
down_revision = "c4d8e2f1a7b3"
branch_labels = None
depends_on = None

TABLES = ("submission", "submission_run", "baseline_run")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("worker", sa.String(length=255), nullable=True))
    with op.batch_alter_table("round_set") as batch_op:
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(), nullable=True))
    # Sets prepared before this column existed were sent when their round was generated.
    op.execute("UPDATE round_set SET enqueued_at = created_at")


def downgrade():
    with op.batch_alter_table("round_set") as batch_op:
        batch_op.drop_column("enqueued_at")
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("worker")
