"""team join code: joining a team needs its members' consent

Revision ID: b7c1d2e3f4a5
Revises: 5a33627dd083
Create Date: 2026-11-29 02:10:00

"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "b7c1d2e3f4a5"
down_revision = "5a33627dd083"
branch_labels = None
depends_on = None

# Frozen copy of the model's generator: a migration must not change when the application code does.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _code() -> str:
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))


def upgrade():
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.add_column(sa.Column("join_code", sa.String(length=32), nullable=True))
    team = sa.table("team", sa.column("id", sa.Integer), sa.column("join_code", sa.String))
    connection = op.get_bind()
    for (team_id,) in connection.execute(sa.select(team.c.id)).all():
        connection.execute(sa.update(team).where(team.c.id == team_id).values(join_code=_code()))
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.alter_column("join_code", existing_type=sa.String(length=32), nullable=False)


def downgrade():
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.drop_column("join_code")
