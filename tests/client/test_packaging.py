"""The client wheel: the server's evaluation package inside it, unchanged, and no server dependency."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

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
