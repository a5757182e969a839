"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from app import create_app
from app.extensions import db


def test_migrations_match_the_models(tmp_path):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.db'}")
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.engine.dispose()
    assert diff == [], f"models and migrations differ: run `flask db migrate`: {diff}"


def test_existing_teams_get_a_join_code(tmp_path):
    """Teams created before join codes existed get one each, so their members can invite a teammate."""
    import re

    import sqlalchemy as sa

    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.db'}")
    with app.app_context():
        upgrade(revision="5a33627dd083")
        with db.engine.begin() as connection:
            for name in ("al-bo", "cha-di"):
                insert = sa.text("INSERT INTO team (name, created_at) VALUES (:n, '2026-01-01')")
                connection.execute(insert, {"n": name})
        upgrade()
        with db.engine.connect() as connection:
            codes = [row[0] for row in connection.execute(sa.text("SELECT join_code FROM team"))]
        db.engine.dispose()
    assert len(codes) == 2 and codes[0] != codes[1]
    assert all(re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", c) for c in codes)
