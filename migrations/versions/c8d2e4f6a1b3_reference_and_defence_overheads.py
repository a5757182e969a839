"""reference of undefended traffic; defence overheads measured against it

Revision ID: c8d2e4f6a1b3
Revises: dc481cb375b5
Create Date: 2026-11-29 03:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c8d2e4f6a1b3"
down_revision = "dc481cb375b5"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "reference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("medians", sa.JSON(), nullable=False),
        sa.Column("nb_cells", sa.Integer(), nullable=False),
        sa.Column("nb_captures", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference")),
        sa.UniqueConstraint("sha256", name=op.f("uq_reference_sha256")),
    )
    with op.batch_alter_table("defence") as batch_op:
        batch_op.add_column(sa.Column("overheads", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("reference_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_defence_reference_id"), ["reference_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_defence_reference_id_reference"), "reference", ["reference_id"], ["id"]
        )


def downgrade():
    with op.batch_alter_table("defence") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_defence_reference_id_reference"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_defence_reference_id"))
        batch_op.drop_column("reference_id")
        batch_op.drop_column("overheads")
    op.drop_table("reference")
