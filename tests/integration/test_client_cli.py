"""`srs` (client/) end to end against a live server and worker: login, status, uploads with --wait, download,
validate (defence and attack, with the server's settings), leaderboard, submissions, and every error path.

It lives here, not in tests/client/, to share this folder's session-wide live stack: a second stack would start
a second worker on the same task queue.
"""

from __future__ import annotations

import json
import stat
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from werkzeug.serving import make_server

from app import clock
from app.extensions import db
from app.models import ApiToken, Phase
from app.services import competition
from tests import factories
from tests.conftest import ROOT, SAMPLE_DEFENCE, free_port
from tests.integration.helpers import uniform_attack_csv, zip_csv

# The client's source first on the path: the tests run the code in client/, not an older installed copy.
sys.path.insert(0, str(ROOT / "client"))
from srs_client import cli as srs_cli  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def server_url(live_stack):
    """The live stack's app served over HTTP on a free port, for the whole session."""
    server = make_server("127.0.0.1", 0, live_stack.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@dataclass
class Srs:
    """Runs `srs ARGS` in-process with its own config folder, as a student's terminal would."""

    url: str
    home: Path
    stack: object

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner(
            env={"XDG_CONFIG_HOME": str(self.home), "SRS_URL": self.url, "SRS_TOKEN": None, **(env or {})}
        )
        result = runner.invoke(srs_cli.cli, list(args), input=input, prog_name="srs")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"srs {' '.join(args)} raised instead of printing a message") from result.exception
        assert "Traceback" not in result.output
        return result

    def login(self, username: str, password: str = "secret-pw") -> Result:
        result = self("login", "--username", username, input=password + "\n")
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def srs(stack, server_url, tmp_path):
    return Srs(url=server_url, home=tmp_path / "config", stack=stack)


def _credentials(srs) -> dict:
    path = srs.home / "srs" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())


def test_login_status_errors_and_logout(srs):
    factories.make_user("alice", team="al-bo")

    bad = srs("login", "--username", "alice", input="wrong\n")
    assert bad.exit_code == 1 and "Invalid username or password." in bad.stderr
    assert not (srs.home / "srs" / "credentials.json").exists()

    srs.login("alice")
    saved = _credentials(srs)
    assert saved["url"] == srs.url and saved["token"]

    status = srs("status")
    assert status.exit_code == 0, status.output
    assert "alice" in status.stdout and "al-bo" in status.stdout and "phase None" in status.stdout
    data = json.loads(srs("status", "--json").stdout)
    assert data["user"]["team_name"] == "al-bo" and data["competition"]["round"] == 0
    assert data["latest_defence"] is None

    closed = srs("defence", "upload", str(SAMPLE_DEFENCE))
    assert closed.exit_code == 1
    assert "Defence uploads are closed: the competition is in phase None" in closed.stderr
    closed_json = srs("attack", "upload", str(SAMPLE_DEFENCE), "--json")
    assert closed_json.exit_code == 1 and json.loads(closed_json.stdout)["status"] == 409

    competition.update_state(phase=Phase.DEFENCE)
    limit = srs.stack.app.config["MAX_CONTENT_LENGTH"]
    srs.stack.app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    try:
        too_large = srs("defence", "upload", str(SAMPLE_DEFENCE))
    finally:
        srs.stack.app.config["MAX_CONTENT_LENGTH"] = limit
    assert too_large.exit_code == 1 and "larger than" in too_large.stderr, too_large.output

    nowhere = f"http://127.0.0.1:{free_port()}"
    offline = srs("status", env={"SRS_URL": nowhere})
    assert offline.exit_code == 1 and f"Could not reach the SRS server at {nowhere}" in offline.stderr

    db.session.execute(sa.update(ApiToken).values(expires_at=clock.now() - timedelta(minutes=1)))
    db.session.commit()
    expired = srs("leaderboard")
    assert expired.exit_code == 1 and "Send a valid token" in expired.stderr and "srs login" in expired.stderr

    srs.login("alice")
    token = _credentials(srs)["token"]
    assert srs("logout").exit_code == 0
    assert not (srs.home / "srs" / "credentials.json").exists()
    revoked = srs("status", env={"SRS_TOKEN": token})
    assert revoked.exit_code == 1 and "Send a valid token" in revoked.stderr
    not_logged_in = srs("submissions")
    assert not_logged_in.exit_code == 1 and "You are not logged in" in not_logged_in.stderr


def test_a_round_from_the_terminal(srs, stack, tmp_path):
    alice = factories.make_user("alice", team="al-bo")
    carol = factories.make_user("carol", team="cha-di")
    boss = factories.make_user("boss", admin=True)
    competition.update_state(phase=Phase.DEFENCE)

    # a defence that fails its checks: exit 1, every check listed
    broken = tmp_path / "broken.csv.zip"
    broken.write_bytes(zip_csv("cell_id,rep,size\n1,1,10\n"))
    srs.login("alice")
    failed = srs("defence", "upload", str(broken), "--wait")
    assert failed.exit_code == 1, failed.output
    assert "failed" in failed.stdout and "FAILED" in failed.stdout and "columns" in failed.stdout.lower()
    # the validator, with the server's settings, had said the same before the upload
    worker = json.loads(srs("submissions", "--json").stdout)["items"][0]
    checked = srs("validate", "defence", str(broken), "--settings", "--json")
    assert checked.exit_code == 1
    report = json.loads(checked.stdout)
    assert (report["message"], report["checks"]) == (worker["error"], worker["results"]["checks"])

    validated = srs("validate", "defence", str(SAMPLE_DEFENCE), "--settings")
    assert validated.exit_code == 0, validated.output
    assert "Ready to upload." in validated.stdout and validated.stdout.count("+0.0 %") == 4
    accepted = srs("defence", "upload", str(SAMPLE_DEFENCE), "--wait")
    assert accepted.exit_code == 0, accepted.output
    assert "succeeded" in accepted.stdout and "Utility score" in accepted.stdout
    utility = json.loads(srs("validate", "defence", str(SAMPLE_DEFENCE), "--settings", "--json").stdout)
    assert f"Utility score: {utility['utility_score']:.4f}" in accepted.stdout
    srs.login("carol")
    carol_defence = json.loads(srs("defence", "upload", str(SAMPLE_DEFENCE), "--wait", "--json").stdout)
    assert carol_defence["status"] == "succeeded" and carol_defence["results"]["utility_score"] > 0

    admin = stack.app.test_client()
    headers = factories.api_token(boss)
    assert admin.post("/api/v1/rounds", json={"round": 1}, headers=headers).status_code == 201
    assert admin.put("/api/v1/competition", json={"phase": "Attack"}, headers=headers).status_code == 200

    srs.login("alice")
    status = json.loads(srs("status", "--json").stdout)
    assert status["competition"] == {**status["competition"], "round": 1, "phase": "Attack"}
    assert status["latest_defence"]["status"] == "succeeded"

    sets = tmp_path / "sets"
    wrong_round = srs("attack", "download", "--round", "3", "-o", str(sets))
    assert wrong_round.exit_code == 1 and "round 1, not 3" in wrong_round.stderr
    download = srs("attack", "download", "-o", str(sets))
    assert download.exit_code == 0, download.output
    target = carol.team_id
    assert sorted(p.name for p in sets.iterdir()) == [
        ".srs-sets.json",  # the test sets' capture ids, for `srs validate attack`
        f"team_{target}_test.csv.zip",
        f"team_{target}_train.csv.zip",
    ]

    # validate offline, with the worker's checks, before uploading
    captures = pd.read_csv(sets / f"team_{target}_test.csv.zip")["capture_id"].unique()
    index = json.loads((sets / ".srs-sets.json").read_text())["sets"]
    assert index[f"team_{target}_test.csv.zip"]["capture_ids"] == sorted(captures.tolist())
    good = tmp_path / "uniform.csv.zip"
    good.write_bytes(uniform_attack_csv(target, captures))
    assert srs("validate", "attack", str(good), "--sets", str(sets), "--settings").exit_code == 0
    incomplete = tmp_path / "incomplete.csv.zip"
    incomplete.write_bytes(uniform_attack_csv(target, captures[1:]))
    invalid = srs("validate", "attack", str(incomplete), "--sets", str(sets), "--json")
    assert invalid.exit_code == 1
    assert [c["name"] for c in json.loads(invalid.stdout)["checks"] if not c["passed"]]

    uploaded = srs("attack", "upload", str(good), "--wait")
    assert uploaded.exit_code == 0, uploaded.output
    assert "Scores" in uploaded.stdout and "0.5000" in uploaded.stdout  # uniform probabilities: AUC 0.5
    rejected = srs("attack", "upload", str(incomplete), "--wait")
    assert rejected.exit_code == 1 and "FAILED" in rejected.stdout

    board = srs("leaderboard")
    assert board.exit_code == 0 and "Round 1" in board.stdout and "al-bo" in board.stdout
    assert "cha-di" in srs("leaderboard", "--overall").stdout
    rows = json.loads(srs("leaderboard", "--round", "1", "--json").stdout)["rows"]
    assert {r["team_name"] for r in rows} == {"al-bo", "cha-di"}
    missing = srs("leaderboard", "--round", "7")
    assert missing.exit_code == 1 and "There is no round 7" in missing.stderr

    listing = json.loads(srs("submissions", "--json").stdout)
    kinds = [(s["kind"], s["status"]) for s in listing["items"]]
    assert kinds == [("attack", "failed"), ("attack", "succeeded"), ("defence", "succeeded"), ("defence", "failed")]
    one = srs("submissions", str(listing["items"][1]["id"]))
    assert one.exit_code == 0 and "succeeded" in one.stdout and "ROC-AUC" in one.stdout
    other_team = srs("submissions", str(carol_defence["id"]))
    assert other_team.exit_code == 1 and "no such submission of your team" in other_team.stderr
    assert alice.team_id != carol.team_id
