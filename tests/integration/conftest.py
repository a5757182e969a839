"""The live stack: a migrated database, a real Redis, real Celery worker processes and an aiosmtpd server
collecting mail.

Which database each test runs on (chosen once, here, by `pytest_generate_tests`):

- every flow runs ONCE, on the primary database: PostgreSQL when TEST_DATABASE_URL is set (or SRS_REQUIRE_ALL=1,
  as on CI, where a missing PostgreSQL then fails), SQLite otherwise, so a newcomer's run still covers every flow;
- a test marked `@pytest.mark.both_databases` runs on SQLite AND on PostgreSQL (when set): the ones where the
  database is the point (compare-and-set claims under double runs, worker deaths and sweeps, two beats racing
  for one scheduled action). Migrations and the quota race have their own both-database tests outside this
  directory (tests/test_migrations.py, tests/web/test_quotas.py, fixture `database_url`).

The baseline attack's worker (queue CELERY_TASK_QUEUE + ".baseline") is not started by default: accepted defences
still queue their baseline run (the message waits in Redis, the row stays queued), but no process spends CPU on
it. The tests about the baseline ask for it with the `baseline_worker` fixture, which starts it on an emptied
queue and stops it afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from app.services import maintenance
from tests.api_schema import SchemaCheckedClient
from tests.conftest import REQUIRE_ALL, ROOT, TEST_REDIS_URL, free_port, postgres_schema, run_namespace, skip_or_fail

pytestmark = pytest.mark.integration


class MailBox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        msg = message_from_bytes(envelope.content)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class LiveStack:
    app: object
    env: dict[str, str]
    base: Path
    mailbox: MailBox
    worker: subprocess.Popen | None = None
    worker_log: Path | None = None
    baseline_worker: subprocess.Popen | None = None
    baseline_log: Path | None = None
    extra: dict = field(default_factory=dict)

    def _celery_worker(self, queue: str, name: str, log: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "srs.celery",
                "worker",
                "--queues",
                queue,
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=info",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{name}-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_baseline_worker(self) -> None:
        """Start the baseline attack's worker (as run-srs.sh does) on an emptied queue, unless it runs.

        Its queue is emptied first: earlier tests queued baseline runs of defences since deleted (flush_db), and
        on SQLite their ids come back, so a stale message would run the baseline of another test's defence.
        """
        if self.baseline_worker is not None and self.baseline_worker.poll() is None:
            return
        queue = self.env["CELERY_TASK_QUEUE"] + ".baseline"
        r = redis.Redis.from_url(self.env["CELERY_BROKER_URL"])
        stale = list(r.scan_iter(queue + "*"))
        if stale:
            r.delete(*stale)
        self.baseline_log = self.base / f"baseline-worker-{time.monotonic_ns()}.log"
        self.baseline_worker = self._celery_worker(queue, "baseline", self.baseline_log)

    def start_worker(self) -> None:
        """Start a worker of the main queue (the baseline's worker only on demand: start_baseline_worker)."""
        queue = self.env["CELERY_TASK_QUEUE"]
        self.worker_log = self.base / f"worker-{time.monotonic_ns()}.log"
        self.worker = self._celery_worker(queue, "test", self.worker_log)
        try:
            self.call("srs.competition_state", timeout=60)
        except Exception as exc:  # pragma: no cover - diagnostic path
            raise AssertionError(f"worker did not answer: {exc}\n{self.worker_log.read_text()[-3000:]}") from exc

    def call(self, task_name: str, *args, timeout: float = 30):
        """Run a task in the worker through this stack's own Celery app and return its result."""
        return self.app.extensions["celery"].send_task(task_name, args=list(args)).get(timeout=timeout)

    def stop_worker(self) -> None:
        """Stop the main queue's worker (the baseline worker keeps running: see stop_baseline_worker)."""
        _stop(self.worker)
        self.worker = None

    def stop_baseline_worker(self) -> None:
        _stop(self.baseline_worker)
        self.baseline_worker = None

    def worker_output(self) -> str:
        return self.worker_log.read_text(errors="replace") if self.worker_log else ""


def _stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


_WITH_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL")) or REQUIRE_ALL
PRIMARY_BACKEND = "postgresql" if _WITH_POSTGRES else "sqlite"
ALL_BACKENDS = ["sqlite", "postgresql"] if _WITH_POSTGRES else ["sqlite"]


def pytest_generate_tests(metafunc):
    """Run each test on the primary database, and a `both_databases` test on every one (see the docstring)."""
    if "live_stack" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_databases") is not None
        backends = ALL_BACKENDS if both else [PRIMARY_BACKEND]
        metafunc.parametrize("live_stack", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def live_stack(request, tmp_path_factory):
    with ExitStack() as cleanup:
        yield from _live_stack(request.param, tmp_path_factory, cleanup)


def _live_stack(backend: str, tmp_path_factory, cleanup: ExitStack):
    """The stack on `backend`; PostgreSQL in a schema of its own, so that parallel test processes stay apart."""
    base = tmp_path_factory.mktemp(f"live-{backend}")
    db_url = f"sqlite:///{base / 'srs.db'}" if backend == "sqlite" else cleanup.enter_context(postgres_schema())
    r = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1)
    try:
        r.ping()
    except redis.exceptions.ConnectionError:
        skip_or_fail(f"no Redis at {TEST_REDIS_URL}: run ./run-redis.sh")
    namespace = f"{run_namespace()}-{backend}"

    mailbox = MailBox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()

    settings = {
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": TEST_REDIS_URL,
        "RESULT_BACKEND": TEST_REDIS_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "UPLOAD_FOLDER": str(base / "uploads"),
        "TEMPORARY_UPLOAD_FOLDER": str(base / "tmp"),
        "LOG_FOLDER": str(base / "logs"),
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "MAIL_DEFAULT_SENDER": "srs@example.org",
        "SECRET_KEY": "live-stack-secret",
        "SRS_CONFIG": "development",
        "CELERY_TASK_QUEUE": namespace,
        "REDIS_KEY_PREFIX": namespace + ":",
    }
    env = {**os.environ, **settings}
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=db_url,
        CELERY_BROKER_URL=TEST_REDIS_URL,
        RESULT_BACKEND=TEST_REDIS_URL,
        REDIS_URL=TEST_REDIS_URL,
        UPLOAD_FOLDER=settings["UPLOAD_FOLDER"],
        TEMPORARY_UPLOAD_FOLDER=settings["TEMPORARY_UPLOAD_FOLDER"],
        CELERY_TASK_QUEUE=namespace,
        REDIS_KEY_PREFIX=namespace + ":",
        RATELIMIT_ENABLED=False,
        LEADERBOARD_CACHE_TIME=5,  # these tests log the same users in many times; limits have their own tests
        SECRET_KEY=settings["SECRET_KEY"],  # the workers sign what they make (reset links) with the same key
    )
    app.test_client_class = SchemaCheckedClient
    with app.app_context():
        upgrade()
    stack = LiveStack(app=app, env=env, base=base, mailbox=mailbox)
    stack.extra["backend"] = backend
    # Direct database work goes through a twin app, so that each request to `app` gets its own app context.
    ctx = create_app("testing", **app.config).app_context()
    ctx.push()
    stack.start_worker()
    yield stack
    stack.stop_worker()
    stack.stop_baseline_worker()
    ctx.pop()
    controller.stop()
    with app.app_context():
        db.engine.dispose()
    stale = list(r.scan_iter(namespace + "*"))
    if stale:
        r.delete(*stale)


@pytest.fixture
def stack(live_stack):
    """The live stack with an empty database and mailbox for each test."""
    maintenance.flush_db()
    live_stack.mailbox.messages.clear()
    if live_stack.worker is None or live_stack.worker.poll() is not None:
        live_stack.start_worker()
    yield live_stack
    db.session.remove()


@pytest.fixture
def baseline_worker(stack):
    """The live stack with the baseline attack's worker running, for this test only."""
    stack.start_baseline_worker()
    yield stack
    stack.stop_baseline_worker()
