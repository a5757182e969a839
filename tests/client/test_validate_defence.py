"""`srs validate defence`: the worker's evaluation offline, with the bundled reference or another, and the
settings the server sends (GET /api/v1/competition's defence_settings)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from app.evaluation.defence import CellMedians, DefenceSettings, compute_reference, evaluate_defence
from app.evaluation.errors import ValidationError
from app.services.settings import defence_settings
from tests import factories
from tests.client import corpus
from tests.client.served import Srs, served
from tests.conftest import ROOT, SAMPLE_DEFENCE

BUNDLED = ROOT / "client" / "srs_client" / "reference.json"


@pytest.fixture(scope="module")
def reference() -> CellMedians:
    return compute_reference(SAMPLE_DEFENCE, DefenceSettings())


@pytest.fixture(scope="module")
def kilobytes(tmp_path_factory) -> Path:
    """The sample with sizes written in kB: it passes every check but plausibility."""
    return corpus.DEFENCES[-2].build(tmp_path_factory.mktemp("kb"))


@pytest.fixture
def srs(tmp_path) -> Srs:
    return Srs(tmp_path / "home")


def test_the_bundled_reference_is_the_samples_medians_as_the_worker_computes_them(reference):
    """Refresh it with `python scripts/make_client_reference.py` when this fails."""
    document = json.loads(BUNDLED.read_text(encoding="utf-8"))
    assert document["sha256"] == hashlib.sha256(SAMPLE_DEFENCE.read_bytes()).hexdigest()
    assert CellMedians.from_dict(document["medians"]) == reference


def test_the_sample_passes_offline_with_no_overhead_and_its_utility(srs):
    run = srs("validate", "defence", str(SAMPLE_DEFENCE))
    assert run.exit_code == 0, run.output
    assert "Validation of the defence file: passed" in run.stdout
    assert "plausibility" in run.stdout and "FAILED" not in run.stdout
    assert "Utility score: 5.7300" in run.stdout
    assert run.stdout.count("+0.0 %") == 4  # bandwidth in, out, total and time against itself
    assert "Ready to upload." in run.stdout


def test_a_kilobyte_defence_fails_plausibility_as_the_worker_would_fail_it(srs, kilobytes, reference, tmp_path):
    run = srs("validate", "defence", str(kilobytes), "--json")
    assert run.exit_code == 1
    report = json.loads(run.stdout)
    with pytest.raises(ValidationError) as worker:  # the worker's function with the sample as its reference
        evaluate_defence(kilobytes, tmp_path, team_id=1, settings=DefenceSettings(), seed=5, reference=reference)
    assert report["message"] == worker.value.message
    assert report["checks"] == [check.to_dict() for check in worker.value.checks]
    failed = [check for check in report["checks"] if not check["passed"]]
    assert [check["name"] for check in failed] == ["plausibility"] and "look like kB" in failed[0]["message"]
    shown = srs("validate", "defence", str(kilobytes))
    assert shown.exit_code == 1 and "FAILED" in shown.stdout and "Fix the failed checks" in shown.stdout


def test_every_failed_check_is_listed_and_the_exit_code_is_one(srs, tmp_path):
    upload = corpus.DEFENCES[3].build(tmp_path)  # values that are not numbers, with the default settings
    run = srs("validate", "defence", str(upload), "--json")
    assert run.exit_code == 1
    report = json.loads(run.stdout)
    failed = [check["name"] for check in report["checks"] if not check["passed"]]
    assert failed == ["types", "sizes", "cells", "repetitions", "capture_length", "capture_count"]
    assert report["message"].startswith("The defence failed 6 checks (types, sizes, cells")
    assert "line 17: direction_size = 'abc' is not a whole number" in run.stdout


def test_another_reference_as_medians_or_as_traces_and_none(srs, reference, tmp_path):
    medians = tmp_path / "medians.json"
    medians.write_text(json.dumps(reference.to_dict()))
    for option in (["--reference", str(medians)], ["--reference", str(SAMPLE_DEFENCE)]):
        report = json.loads(srs("validate", "defence", str(SAMPLE_DEFENCE), "--json", *option).stdout)
        assert report["passed"] and report["overheads"]["time"] == 0.0, option
        assert str(option[1]) in report["reference"]
    report = json.loads(srs("validate", "defence", str(SAMPLE_DEFENCE), "--json", "--no-reference").stdout)
    assert report["passed"] and report["overheads"] is None
    assert "plausibility" not in [check["name"] for check in report["checks"]]


def said(run) -> str:
    """What srs printed, with the terminal's line wrapping undone."""
    return " ".join(run.output.split())


def test_an_unusable_reference_or_server_is_a_sentence_not_a_traceback(srs, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"cell_id": [1]}')
    run = srs("validate", "defence", str(SAMPLE_DEFENCE), "--reference", str(broken))
    assert run.exit_code == 1 and "is not a reference" in said(run) and "lack" in said(run)
    run = srs("validate", "defence", str(SAMPLE_DEFENCE), "--settings")
    assert run.exit_code == 1 and "You are not logged in" in said(run)
    run = Srs(srs.home, token="t")("validate", "defence", str(SAMPLE_DEFENCE), "--settings")
    assert run.exit_code == 1 and "Could not reach the SRS server" in said(run)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({**json.loads(BUNDLED.read_text())["medians"], "cell_id": list(range(101, 201))}))
    run = srs("validate", "defence", str(SAMPLE_DEFENCE), "--reference", str(elsewhere))
    assert run.exit_code == 1 and "have no cell in common" in said(run)
    both = srs("validate", "defence", str(SAMPLE_DEFENCE), "--no-reference", "--reference", str(broken))
    assert both.exit_code == 2 and "not both" in said(both)


def test_the_competition_api_sends_the_workers_defence_settings_as_documented(app, client):
    headers = factories.api_token(factories.make_user("alice", team="al-bo"))
    app.config.update(MAX_ROWS=1234, MIN_PACKET_BYTES=30)
    sent = client.get("/api/v1/competition", headers=headers).get_json()["defence_settings"]
    expected = dataclasses.asdict(defence_settings(app.config))
    assert sent == {**expected, "columns": list(expected["columns"])}
    assert (sent["max_rows"], sent["min_packet_bytes"]) == (1234, 30)
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["DefenceSettings"]
    assert set(schema["properties"]) == set(sent) == set(schema["required"])


def test_settings_from_the_server_are_the_ones_checked(app, tmp_path):
    """A small competition (4 cells): its valid file fails the package's defaults and passes the server's."""
    app.config.update(corpus.SMALL)
    upload = corpus.DEFENCES[0].build(tmp_path)
    token = factories.api_token(factories.make_user("alice", team="al-bo"))["Authorization"].split()[1]
    with served(app) as url:
        srs = Srs(tmp_path / "home", url, token)
        offline = srs("validate", "defence", str(upload), "--no-reference", "--json")
        online = srs("validate", "defence", str(upload), "--no-reference", "--settings", "--json")
    assert offline.exit_code == 1 and "cells" in json.loads(offline.stdout)["message"]
    assert online.exit_code == 0 and json.loads(online.stdout)["utility_score"] > 0


def test_validation_splits_without_writing_and_agrees_with_the_written_evaluation(tmp_path):
    """`srs validate` skips writing the sets (the slow half of the worker's evaluation), and only that."""
    upload = corpus.DEFENCES[0].build(tmp_path)
    settings = DefenceSettings(**{k.lower(): v for k, v in corpus.SMALL.items()})
    written, bare = tmp_path / "written", tmp_path / "bare"
    written.mkdir(), bare.mkdir()
    full = evaluate_defence(upload, written, team_id=1, settings=settings, seed=2)
    stages = []
    quick = evaluate_defence(
        upload, bare, team_id=1, settings=settings, seed=2, write_sets=False, progress=stages.append
    )
    assert list(bare.iterdir()) == [] and quick.train_path is None and len(list(written.iterdir())) == 3
    assert stages == ["reading", "checking", "measuring", "splitting"]
    assert quick.to_dict() == full.to_dict()
