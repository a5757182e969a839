"""one set per attacker: round_set.match_id (a defence's test pool under each attacker's own ids)

Revision ID: a3f5c7e9b1d2
Revises: e2a9c7f41b05
Create Date: 2026-12-07 07:00:00

Older rows (no match_id) were one fresh split of a defence per round, shared by its attackers. Those already
prepared stay as they are: their sets were handed out. Those still preparing (or failed) were never handed out:
they become one set per attacker of the same round, which the sweeper sends to a worker (or the first download
prepares).
"""

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "a3f5c7e9b1d2"
down_revision = "e2a9c7f41b05"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("round_set") as batch_op:
        batch_op.add_column(sa.Column("match_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint("uq_round_set_round", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_round_set_match_id"), ["match_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_round_set_match_id_match"), "match", ["match_id"], ["id"], ondelete="CASCADE"
        )
    connection = op.get_bind()
    unready = connection.execute(
        sa.text(
            'SELECT m.id, m.round, m.defence_id FROM "match" m JOIN round_set r '
            "ON r.round = m.round AND r.defence_id = m.defence_id "
            "WHERE r.match_id IS NULL AND r.status != 'ready'"
        )
    ).all()
    connection.execute(sa.text("DELETE FROM round_set WHERE match_id IS NULL AND status != 'ready'"))
    now = datetime.now(UTC).replace(tzinfo=None)
    for match_id, number, defence_id in unready:
        connection.execute(
            sa.text(
                "INSERT INTO round_set (round, defence_id, match_id, status, seed, train_size, test_size, created_at) "
                "VALUES (:round, :defence_id, :match_id, 'preparing', :seed, 0, 0, :now)"
            ),
            {"round": number, "defence_id": defence_id, "match_id": match_id, "seed": secrets.randbits(62), "now": now},
        )


def downgrade():
    op.execute("DELETE FROM round_set WHERE match_id IS NOT NULL")
    with op.batch_alter_table("round_set") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_round_set_match_id_match"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_round_set_match_id"), type_="unique")
        batch_op.create_unique_constraint("uq_round_set_round", ["round", "defence_id"])
        batch_op.drop_column("match_id")
