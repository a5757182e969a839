"""round closing, public-subset scores and fresh sets per round: round.closed_at, attack.public_scores, round_set

Revision ID: c4d8e2f1a7b3
Revises: c9a4e2b7d1f0
Create Date: 2026-11-29 03:05:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c4d8e2f1a7b3"
down_revision = "c9a4e2b7d1f0"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("round") as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("attack") as batch_op:
        batch_op.add_column(sa.Column("public_scores", sa.JSON(), nullable=True))
    op.create_table(
        "round_set",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("defence_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("train_key", sa.String(length=255), nullable=True),
        sa.Column("test_key", sa.String(length=255), nullable=True),
        sa.Column("verification_key", sa.String(length=255), nullable=True),
        sa.Column("train_size", sa.Integer(), nullable=False),
        sa.Column("test_size", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["defence_id"], ["defence.id"], name=op.f("fk_round_set_defence_id_defence")),
        sa.ForeignKeyConstraint(["round"], ["round.number"], name=op.f("fk_round_set_round_round")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_set")),
        sa.UniqueConstraint("round", "defence_id", name=op.f("uq_round_set_round")),
    )
    with op.batch_alter_table("round_set") as batch_op:
        batch_op.create_index(batch_op.f("ix_round_set_round"), ["round"], unique=False)
    # Every round but the latest has ended (a later one was generated): their full scores are already public.
    op.execute("UPDATE round SET closed_at = created_at WHERE number < (SELECT MAX(number) FROM round)")


def downgrade():
    with op.batch_alter_table("round_set") as batch_op:
        batch_op.drop_index(batch_op.f("ix_round_set_round"))
    op.drop_table("round_set")
    with op.batch_alter_table("attack") as batch_op:
        batch_op.drop_column("public_scores")
    with op.batch_alter_table("round") as batch_op:
        batch_op.drop_column("closed_at")
