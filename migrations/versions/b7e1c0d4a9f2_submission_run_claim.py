"""submission run claim: run_id and task_id

Revision ID: b7e1c0d4a9f2
Revises: b7c1d2e3f4a5
Create Date: 2026-11-29 02:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b7e1c0d4a9f2"
down_revision = "b7c1d2e3f4a5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("submission") as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("task_id", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("submission") as batch_op:
        batch_op.drop_column("task_id")
        batch_op.drop_column("run_id")
