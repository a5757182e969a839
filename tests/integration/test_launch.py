"""./run-srs.sh options that must refuse before starting anything."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "SRS_VENV": sys.prefix, "SRS_SKIP_INSTALL": "1", **env}
    return subprocess.run(
        ["bash", str(ROOT / "run-srs.sh"), *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_production_refuses_the_default_secret_key():
    result = _run("--production", SECRET_KEY="")
    assert result.returncode == 1
    assert "Refusing --production with the default SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_role_options_exclude_each_other_and_unknown_options_are_named():
    both = _run("--web-only", "--worker-only")
    assert both.returncode == 2 and "exclude each other" in both.stderr
    unknown = _run("--fast")
    assert unknown.returncode == 2 and "Unknown option --fast" in unknown.stderr


def test_a_bad_niceness_is_refused_before_anything_starts():
    result = _run(SRS_WORKER_NICE="high")
    assert result.returncode == 2
    assert "SRS_WORKER_NICE=high is not a niceness: give a whole number from 0" in result.stderr
    assert _run(SRS_BASELINE_NICE="25").returncode == 2
