"""Fixtures: app on a file SQLite database, client, runner, auth actions, factories, Redis, live stack."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jinja2
import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.extensions import db, limiter
from tests import factories
from tests.api_schema import SchemaCheckedClient

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DEFENCE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_ALL = os.environ.get("SRS_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str):
    """Skip on a newcomer's machine; fail on CI, where nothing may skip."""
    if REQUIRE_ALL:
        pytest.fail(reason + " (SRS_REQUIRE_ALL=1: nothing may skip)")
    pytest.skip(reason)


def run_namespace() -> str:
    """A name unique to this test run, for its Redis keys and task queue: runs sharing a Redis stay apart."""
    return f"srs-test-{os.getpid()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The longest test files start first: ./run-tests.sh's parallel processes then finish together, instead of one
# process running a long file it picked up last while the other waits.
_LONGEST_FIRST = ("tests/browser/", "tests/integration/", "tests/client/test_fuzz_api.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(_LONGEST_FIRST))  # stable: a file's tests stay in order


_sqlite_template: Path | None = None


def _schema_template() -> Path:
    """A SQLite file with every table, built once per test process (create_all costs far more than a copy)."""
    global _sqlite_template
    if _sqlite_template is None:
        folder = Path(tempfile.mkdtemp(prefix="srs-schema-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        engine = sa.create_engine(f"sqlite:///{folder / 'schema.db'}")
        db.metadata.create_all(engine)
        engine.dispose()
        _sqlite_template = folder / "schema.db"
    return _sqlite_template


def create_schema() -> None:
    """Create every table in the current app's database: a new SQLite file starts as a copy of the template."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():
            shutil.copyfile(_schema_template(), path)
            return
    db.create_all()


class _SharedBytecode(jinja2.BytecodeCache):
    """Compiled templates kept in memory for every app of the test process (each test builds new apps, whose
    environments would otherwise parse and compile every template again); the source's checksum still decides."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_templates = _SharedBytecode()


def share_compiled_templates(app: Flask) -> Flask:
    app.jinja_env.bytecode_cache = _templates
    return app


@contextmanager
def app_on(database_url: str, tmp_path: Path, **overrides) -> Iterator[Flask]:
    """The testing app on database_url (tables created), files under tmp_path; the body runs in a twin's context."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "TEMPORARY_UPLOAD_FOLDER": str(tmp_path / "tmp"),
        "CELERY_BROKER_URL": "memory://",
        "CELERY_ALWAYS_EAGER": True,
        "REDIS_URL": TEST_REDIS_URL,
    }
    app = create_app("testing", **{**settings, **overrides})
    app.test_client_class = SchemaCheckedClient  # every 2xx API body checked against the OpenAPI document
    share_compiled_templates(app)
    # Tests touch the database through a twin app's context: a request to `app` then gets an app context of
    # its own, as in production, instead of sharing `g` (and Flask-Login's cached user) across requests.
    limiter.reset()  # counters live in the process's memory: each test starts from zero
    twin = create_app("testing", **app.config)
    with twin.app_context():
        create_schema()
        yield app
        db.session.remove()
        db.engine.dispose()
    with app.app_context():
        db.engine.dispose()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL of TEST_DATABASE_URL's database in a schema of its own, dropped afterwards; skip (fail on CI) without.

    A schema rather than the whole database: the live stack (tests/integration) keeps its tables in `public`
    for the whole session.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        skip_or_fail("TEST_DATABASE_URL is not set: the PostgreSQL variant of this test needs it")
    schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        skip_or_fail(f"PostgreSQL at {url} does not answer: {exc.orig}")
    try:
        scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def app(tmp_path):
    with app_on(f"sqlite:///{tmp_path / 'test.db'}", tmp_path) as app:
        yield app


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh database on each backend: a file SQLite one, and a PostgreSQL schema when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username: str = "alice", password: str = "secret-pw"):
        return self._client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def alice(app):
    """A student in team al-bo (password secret-pw)."""
    return factories.make_user("alice", team="al-bo")


@pytest.fixture
def admin(app):
    return factories.make_user("admin", admin=True)
