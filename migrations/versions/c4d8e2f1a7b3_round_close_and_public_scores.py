"""round closing and public-subset scores: round.closed_at, attack.public_scores

Revision ID: c4d8e2f1a7b3
Revises: b7e1c0d4a9f2
Create Date: 2026-11-29 03:05:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c4d8e2f1a7b3"
down_revision = "b7e1c0d4a9f2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("round") as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("attack") as batch_op:
        batch_op.add_column(sa.Column("public_scores", sa.JSON(), nullable=True))
    # Every round but the latest has ended (a later one was generated): their full scores are already public.
    op.execute("UPDATE round SET closed_at = created_at WHERE number < (SELECT MAX(number) FROM round)")


def downgrade():
    with op.batch_alter_table("attack") as batch_op:
        batch_op.drop_column("public_scores")
    with op.batch_alter_table("round") as batch_op:
        batch_op.drop_column("closed_at")
