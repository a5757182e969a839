"""`srs validate` agrees with the worker on every defence and attack file of the evaluation tests.

Both paths run for real: the worker's as a student meets it (POST /api/v1/defences or /attacks, the service the
Celery task calls, GET /api/v1/submissions/<id>), the validator's as `srs validate ... --settings --json` against
the same app served over HTTP. Same pass or fail, same message, same checks; for accepted defences the same
utility and overheads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app.models import Phase
from app.services import attacks, competition, defences
from tests import factories
from tests.client import corpus
from tests.client.served import Srs, served
from tests.conftest import ROOT, SAMPLE_DEFENCE

NO_QUOTAS = {"DEFENCE_UPLOADS_PER_DAY": 0, "ATTACK_UPLOADS_PER_DAY": 0}


def reference_args(app) -> list[str]:
    """The validator's reference option that matches the worker's.

    Without a REFERENCE_TRACES setting, the worker measures no overheads and runs no plausibility check
    (--no-reference); with it, the bundled reference is the default sample's medians, any other file is given.
    """
    path = app.config.get("REFERENCE_TRACES")
    if path is None:
        return ["--no-reference"]
    path = Path(path) if Path(path).is_absolute() else ROOT / path
    return [] if path.resolve() == SAMPLE_DEFENCE.resolve() else ["--reference", str(path)]


def worker_verdict(app, client, headers, kind: str, path: Path) -> dict:
    """Upload through the API and run the worker's evaluation: what the student is told."""
    with path.open("rb") as handle:
        answer = client.post(f"/api/v1/{kind}s", headers=headers, data={"file": (handle, path.name)})
    if answer.status_code == 422:  # refused before queueing: never reaches the worker
        return {"passed": False, "message": answer.get_json()["message"], "checks": [], "results": {}}
    assert answer.status_code == 202, answer.get_json()
    submission_id = answer.get_json()["submission_id"]
    with app.app_context():  # the app's own config (the fixture's twin holds a copy)
        (defences if kind == "defence" else attacks).run_evaluation(submission_id)
    submission = client.get(f"/api/v1/submissions/{submission_id}", headers=headers).get_json()
    assert submission["status"] in ("succeeded", "failed"), submission
    results = submission["results"] or {}
    return {
        "passed": submission["status"] == "succeeded",
        "message": submission["error"],
        "checks": results.get("checks", []),
        "results": results,
    }


def differences(name: str, worker: dict, validator: dict) -> list[str]:
    """How the validator's report differs from the worker's verdict (nothing when they agree)."""
    found = []
    if worker["passed"] != validator["passed"]:
        found.append(f"{name}: the worker {'accepted' if worker['passed'] else 'refused'} it, the validator not")
    if worker["message"] != validator["message"]:
        found.append(f"{name}: message {worker['message']!r} != {validator['message']!r}")
    expected = worker["checks"] or [
        {"name": "file", "passed": False, "message": worker["message"], "count": 1, "examples": []}
    ]
    if expected != validator["checks"]:
        found.append(f"{name}: checks {json.dumps(expected)} != {json.dumps(validator['checks'])}")
    for key in ("utility", "utility_score"):
        if worker["passed"] and worker["results"].get(key) != validator.get(key):
            found.append(f"{name}: {key} {worker['results'].get(key)} != {validator.get(key)}")
    theirs, ours = worker["results"].get("overheads") or {}, validator.get("overheads") or {}
    for key in ("bandwidth_in", "bandwidth_out", "bandwidth_total", "time"):
        if theirs.get(key) != ours.get(key):
            found.append(f"{name}: overhead {key} {theirs.get(key)} != {ours.get(key)}")
    return found


@pytest.fixture
def student(app, tmp_path):
    """alice of team al-bo, with a token, uploads open and no quota; yields her headers and her srs."""
    app.config.update(NO_QUOTAS)
    alice = factories.make_user("alice", team="al-bo")
    headers = factories.api_token(alice)
    competition.update_state(phase=Phase.BOTH)
    with served(app) as url:
        yield alice, headers, Srs(tmp_path / "home", url, headers["Authorization"].split()[1])


def test_the_validator_agrees_with_the_worker_on_every_defence(app, client, student, tmp_path):
    _, headers, srs = student
    defaults = {key: app.config[key] for case in corpus.DEFENCES for key in case.config}
    mismatches, accepted = [], set()
    for case in corpus.DEFENCES:
        folder = tmp_path / case.name.replace(" ", "-")
        folder.mkdir()
        app.config.update({**defaults, **case.config})
        path = case.build(folder)
        worker = worker_verdict(app, client, headers, "defence", path)
        run = srs("validate", "defence", str(path), "--settings", "--json", *reference_args(app))
        assert run.exit_code == (0 if worker["passed"] else 1), (case.name, run.output)
        mismatches += differences(case.name, worker, json.loads(run.stdout))
        accepted |= {case.name} if worker["passed"] else set()
    assert not mismatches, "\n".join(mismatches)
    # Both outcomes occur (the small valid file passes too while the worker has no reference to check it by).
    assert "sample" in accepted and "more rows than MAX_ROWS" not in accepted


def test_the_validator_agrees_with_the_worker_on_every_attack(app, client, student, tmp_path):
    alice, headers, srs = student
    # Two targets with real sets, made by the worker from the sample (plausible against any reference it uses).
    targets = []
    for name in ("cha-di", "eu-fra"):
        defender = factories.make_user(f"{name}-member", team=name)
        assert worker_verdict(app, client, factories.api_token(defender), "defence", SAMPLE_DEFENCE)["passed"]
        targets.append(defender.team)
    factories.make_round(1, [(alice.team, target) for target in targets])
    sets = tmp_path / "sets"
    assert srs("attack", "download", "-o", str(sets)).exit_code == 0
    captures = {
        team.id: sorted(set(pd.read_csv(sets / f"team_{team.id}_test.csv.zip")["capture_id"])) for team in targets
    }
    mismatches, accepted = [], set()
    for name, build in corpus.ATTACKS:
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        path = build(folder, captures, app.config["NB_CLASSES"])
        worker = worker_verdict(app, client, headers, "attack", path)
        run = srs("validate", "attack", str(path), "--sets", str(sets), "--settings", "--json")
        assert run.exit_code == (0 if worker["passed"] else 1), (name, run.output)
        mismatches += differences(name, worker, json.loads(run.stdout))
        accepted |= {name} if worker["passed"] else set()
    assert not mismatches, "\n".join(mismatches)
    assert accepted == {"uniform", "one target of two", "rows and columns shuffled"}
