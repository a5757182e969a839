"""What every web, worker and beat process loads at start: not scikit-learn, pandas or SciPy (about 120 MB and
1.5 s a process), which only the baseline attack, the similarity hash, the set rewrite and the ROC curves use, and
import where they run."""

import os
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("sklearn", "pandas", "scipy")


def test_a_process_starts_without_the_heavy_libraries():
    script = (
        "import importlib, sys, srs\n"
        "for name in srs.celery.conf.include: importlib.import_module(name)\n"  # what a worker loads
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "CELERY_BROKER_URL": "memory://", "SRS_CONFIG": "testing"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at start: {out.stdout.strip()} (import them where they are used)"
