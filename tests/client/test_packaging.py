"""The client wheel: the server's evaluation package inside it, unchanged, the bundled reference, no server
dependency; installed alone, `srs validate` runs from it (./run-tests.sh installs it into the venv)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_DEFENCE, skip_or_fail

SERVER_ONLY = ("flask", "celery", "sqlalchemy", "redis", "psycopg", "gunicorn")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), "."],
        cwd=ROOT / "client",
        check=True,
        timeout=300,
    )
    (path,) = out.glob("srs_client-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed alone into a folder (its dependencies come from this venv)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), wheel.filename],
        check=True,
        timeout=300,
    )
    return target


def test_the_wheel_ships_the_evaluation_package_unchanged(wheel):
    source = ROOT / "app" / "evaluation"
    expected = {f"srs_client/evaluation/{p.relative_to(source).as_posix()}": p for p in source.rglob("*.py")}
    shipped = {n for n in wheel.namelist() if n.startswith("srs_client/evaluation/")}
    assert shipped == set(expected)
    for name, path in expected.items():
        assert wheel.read(name) == path.read_bytes(), name


def test_the_wheel_installs_srs_without_server_dependencies(wheel):
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [
        line.split(":", 1)[1].strip().lower()
        for line in wheel.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert requires and not [r for r in requires if r.startswith(SERVER_ONLY)]
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "srs = srs_client.cli:main" in wheel.read(entry_points).decode()


def test_the_wheel_ships_the_bundled_reference(wheel):
    assert wheel.read("srs_client/reference.json") == (ROOT / "client" / "srs_client" / "reference.json").read_bytes()


def test_the_installed_wheel_validates_a_defence_with_its_own_evaluation_package(installed, tmp_path):
    """Away from the repository (no app/ to fall back on): the shipped package and reference must do."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import srs_client.evaluation.defence as d; "
        "assert d.__file__.startswith(sys.argv[1]), d.__file__; "
        "from srs_client.cli import main; sys.argv[1:2] = []; main()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SRS_URL", "SRS_TOKEN")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(installed), "validate", "defence", str(SAMPLE_DEFENCE), "--json"],
        cwd=tmp_path,
        env={**env, "XDG_CONFIG_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] and report["overheads"]["bandwidth_total"] == 0.0
    assert "bundled reference" in report["reference"]
    assert "plausibility" in [check["name"] for check in report["checks"]]


def test_run_tests_installed_the_current_client():
    """./run-tests.sh installs ./client into the venv (reinstalled when client/ or app/evaluation change)."""
    try:
        installed = importlib.metadata.distribution("srs-client")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed is None or not os.environ.get("SRS_RUN_TESTS"):
        # Run by pytest directly, the installed client may predate the checkout: only run-tests.sh refreshes it.
        skip_or_fail("run the tests with ./run-tests.sh: it installs the current srs client, which this checks")
    # Located through its metadata: tests put client/ first on sys.path, so imports would find the checkout.
    shipped = Path(installed.locate_file("srs_client/evaluation"))
    for path in (ROOT / "app" / "evaluation").rglob("*.py"):
        assert (shipped / path.relative_to(ROOT / "app" / "evaluation")).read_bytes() == path.read_bytes(), path
