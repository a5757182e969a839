"""Two web hosts and two worker hosts sharing only PostgreSQL, Redis and an S3 server play a whole round.

Each host is the real `./run-srs.sh --web-only` or `--worker-only` in its own working folders (no shared disk);
one worker's evaluation process is killed mid-evaluation. Every submission must end evaluated, none twice.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import psutil
import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, SAMPLE_DEFENCE, TEST_REDIS_URL, free_port, postgres_schema, run_namespace, skip_or_fail
from tests.integration.conftest import wait_for
from tests.integration.helpers import uniform_attack_csv
from tests.integration.test_broker_restart import OPENER, request
from tests.s3server import make_bucket, object_keys, s3_server
from tests.sites import forget_site, kill_site, supervised_pid

pytestmark = pytest.mark.integration


class Host:
    """One machine's ./run-srs.sh in its own folders."""

    def __init__(self, name: str, base: Path, env: dict[str, str], *args: str) -> None:
        self.name, self.folder = name, base / name
        self.folder.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "UPLOAD_FOLDER": str(self.folder / "uploads"),
            "TEMPORARY_UPLOAD_FOLDER": str(self.folder / "tmp"),
            "LOG_FOLDER": str(self.folder / "logs"),
            "FLASK_RUN_PORT": str(self.port),
        }
        self.proc = subprocess.Popen(
            ["bash", str(ROOT / "run-srs.sh"), *args],
            cwd=ROOT,
            env=self.env,
            stdout=(self.folder / "run-srs.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def supervised_pid(self, program: str) -> int | None:
        return supervised_pid(self.folder / "logs", program)

    def logs(self) -> str:
        texts = [f"=== {self.name}"]
        for path in [self.folder / "run-srs.log", *sorted((self.folder / "logs").glob("*.log"))]:
            if path.exists():
                texts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(texts)

    def stop(self) -> None:
        """At once: nothing of a test host is kept (test_broker_restart.py checks that SIGTERM stops a host)."""
        kill_site(self.proc)


def _serving(host: Host) -> bool:
    assert host.proc.poll() is None, host.logs()
    try:
        return request(host.url + "/healthz")[0] == 200
    except OSError:
        return False


@pytest.fixture
def deployment(tmp_path):
    if not os.environ.get("TEST_DATABASE_URL"):
        skip_or_fail("TEST_DATABASE_URL is not set: the several-machines test runs on PostgreSQL")
    with postgres_schema() as db_url, s3_server(tmp_path) as s3_env:
        bucket = make_bucket(s3_env)
        namespace = f"{run_namespace()}-hosts-{free_port()}"
        env = {
            **os.environ,
            **s3_env,
            "SRS_VENV": sys.prefix,
            "SRS_SKIP_INSTALL": "1",
            "SRS_CONFIG": "development",
            "SECRET_KEY": "two-hosts-secret",
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": TEST_REDIS_URL,
            "RESULT_BACKEND": TEST_REDIS_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "CELERY_TASK_QUEUE": namespace,
            "REDIS_KEY_PREFIX": namespace + ":",
            "STORAGE_URL": f"s3://{bucket}/course",
            "SRS_WORKER_CONCURRENCY": "1",
            "RATELIMIT_ENABLED": "false",
            "SWEEP_INTERVAL_SECONDS": "5",
        }
        hosts = []
        try:
            hosts.append(Host("web-a", tmp_path, env, "--web-only", "--demo"))
            wait_for(lambda: _serving(hosts[0]), timeout=120, what="web-a")  # it migrates the database first
            hosts.append(Host("web-b", tmp_path, env, "--web-only"))
            hosts.append(Host("worker-a", tmp_path, env, "--worker-only"))
            hosts.append(Host("worker-b", tmp_path, env, "--worker-only", "--no-beat"))
            wait_for(lambda: _serving(hosts[1]), timeout=120, what="web-b")
            for worker in hosts[2:]:
                wait_for(lambda w=worker: w.supervised_pid("worker"), timeout=60, what=worker.name)
            yield {"hosts": hosts, "db_url": db_url, "s3_env": s3_env, "bucket": bucket}
        finally:
            for host in reversed(hosts):
                host.stop()
            forget_site(env)


def _token(web: Host, username: str) -> str:
    status, body, _ = request(web.url + "/api/v1/tokens", method="POST", basic=f"{username}:admin")
    assert status == 201, body
    return body["token"]


def _finished(web: Host, token: str, submission_id: int):
    body = request(f"{web.url}/api/v1/submissions/{submission_id}", token=token)[1]
    return body if body["status"] in ("succeeded", "failed") else None


def _pool_processes(host: Host) -> list[psutil.Process]:
    main = host.supervised_pid("worker")
    return psutil.Process(main).children(recursive=True) if main else []


def test_a_round_through_two_web_hosts_with_a_worker_killed_mid_evaluation(deployment, tmp_path):
    web_a, web_b, worker_a, worker_b = deployment["hosts"]
    webs = [web_a, web_b]
    players = ["alice", "charlie", "eugene"]
    tokens = {name: _token(webs[i % 2], name) for i, name in enumerate([*players, "admin"])}
    phase = request(web_b.url + "/api/v1/competition", method="PUT", token=tokens["admin"], body={"phase": "Defence"})
    assert phase[0] == 200

    # defences, uploaded through both web hosts alternately
    defences = {}
    for i, name in enumerate(players):
        status, body, _ = request(
            webs[i % 2].url + "/api/v1/defences", method="POST", token=tokens[name], body=SAMPLE_DEFENCE
        )
        assert status == 202, body
        defences[name] = body["submission_id"]

    def both_busy():
        statuses = [
            request(f"{web_a.url}/api/v1/submissions/{s}", token=tokens["admin"])[1]["status"]
            for s in defences.values()
        ]
        return statuses.count("running") == 2 and _pool_processes(worker_a)

    wait_for(both_busy, timeout=120, interval=0.1, what="both workers to be evaluating")
    for child in _pool_processes(worker_a):  # worker-a's evaluation process dies mid-evaluation
        os.kill(child.pid, signal.SIGKILL)

    results = {}
    for name, submission_id in defences.items():
        results[name] = wait_for(
            lambda s=submission_id, n=name: _finished(webs[len(results) % 2], tokens[n], s),
            timeout=300,
            what=f"{name}'s defence",
        )
    assert {n: r["status"] for n, r in results.items()} == dict.fromkeys(players, "succeeded"), (
        results,
        worker_a.logs(),
        worker_b.logs(),
    )

    # the round, generated through one host and played through the other
    status, body, _ = request(web_b.url + "/api/v1/rounds", method="POST", token=tokens["admin"], body={"round": 1})
    assert status == 201, body
    phase = request(web_a.url + "/api/v1/competition", method="PUT", token=tokens["admin"], body={"phase": "Attack"})
    assert phase[0] == 200
    attacks = []
    for i, name in enumerate(players):
        web = webs[i % 2]
        sets = _download(web.url + "/api/v1/attack/sets", tokens[name])
        for member in sorted(m for m in sets.namelist() if m.endswith("_test.csv.zip")):
            target = int(member.split("_")[1])
            test = pd.read_csv(io.BytesIO(sets.read(member)), compression="zip")
            attack_file = tmp_path / f"attack-{name}-{target}.csv.zip"
            attack_file.write_bytes(uniform_attack_csv(target, test["capture_id"].unique()))
            status, body, _ = request(
                webs[(i + 1) % 2].url + "/api/v1/attacks",
                method="POST",
                token=tokens[name],
                body=attack_file,
            )
            assert status == 202, body
            attacks.append((name, body["submission_id"]))
    assert len(attacks) == 6  # three teams, each attacking the two others
    for name, submission_id in attacks:
        result = wait_for(lambda s=submission_id, n=name: _finished(web_a, tokens[n], s), timeout=180, what="attack")
        assert result["status"] == "succeeded", result

    boards = [request(web.url + "/api/v1/leaderboard?round=1", token=tokens["alice"])[1] for web in webs]
    assert boards[0] == boards[1]
    assert len(boards[0]["rows"]) == 3 and all(row["score"] is not None for row in boards[0]["rows"])

    # none evaluated twice, one retried after the kill, files only in the bucket
    engine = sa.create_engine(deployment["db_url"])
    with engine.connect() as conn:
        per_defence = conn.execute(sa.text("SELECT submission_id, count(*) FROM defence GROUP BY submission_id")).all()
        per_attack = conn.execute(sa.text("SELECT match_id, count(*) FROM attack GROUP BY match_id")).all()
        attempts = dict(conn.execute(sa.text("SELECT id, attempts FROM submission")).all())
    engine.dispose()
    assert sorted(n for _, n in per_defence) == [1, 1, 1]
    assert len(per_attack) == 6 and {n for _, n in per_attack} == {1}
    assert max(attempts[s] for s in defences.values()) == 2, attempts  # the killed evaluation ran again
    keys = object_keys(deployment["s3_env"], deployment["bucket"])
    assert sum(k.startswith("course/submissions/") for k in keys) == 9
    for host in deployment["hosts"]:
        assert not (host.folder / "uploads").exists(), f"{host.name} stored files on its own disk"


def _download(url: str, token: str) -> zipfile.ZipFile:
    import urllib.request

    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with OPENER.open(req, timeout=60) as response:
        assert response.status == 200
        return zipfile.ZipFile(io.BytesIO(response.read()))
