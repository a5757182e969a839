"""Benchmark `srs validate` against the worker's evaluation of the same file (issue 11: at most 2x its time).

Run: python bench/bench_validate.py [--no-fail] [--repeat N]

The client is the real one: its wheel is built (pip wheel ./client) and installed into a scratch folder, and
`srs validate ...` runs as a student runs it, a fresh process timed from launch to exit (interpreter start,
imports, reading the bundled reference, the checks, the answer printed). The worker is measured as it works:
an already running process (imports done, the reference's medians loaded) timed around the evaluation call
the task makes, evaluate_defence(..., reference) or score_attack.

Files: the sample defence, and an attack on three targets (the sample's test set under three team ids, 900
captures x 100 classes of uniform probabilities), as a round with MATCHES_PER_TEAM = 3 gives.
Times are the best of N runs, wall clock (the target) and CPU (user + system), each run in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"
TARGET_RATIO = 2.0
TARGETS = (1, 2, 3)

WORKER = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
kind, path, extra = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
from app.evaluation.attack import score_attack
from app.evaluation.defence import CellMedians, DefenceSettings, evaluate_defence
import pandas  # loaded in a running worker (the defence code imports it); the scorer imports it lazily
if kind == "defence":
    reference = CellMedians.from_dict(json.loads(extra.read_text())["medians"])
with tempfile.TemporaryDirectory() as out:
    start, cpu = time.perf_counter(), time.process_time()
    if kind == "defence":
        evaluate_defence(path, Path(out), team_id=1, settings=DefenceSettings(), seed=1, reference=reference)
    else:
        sets = {int(p.name.split("_")[1]): p for p in extra.glob("team_*_verification.csv.zip")}
        score_attack(path, sets, nb_classes=100, max_uncompressed_bytes=640 * 1024 * 1024)
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""


# The same validation inside one process, timed after the imports: what `srs validate` costs beyond starting.
SRS_WORK = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from srs_client import validate as v
v.evaluation_module("attack"), v.evaluation_module("defence")  # the imports, as when the command starts
kind, path, extra = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
start, cpu = time.perf_counter(), time.process_time()
if kind == "defence":
    medians, _ = v.bundled_reference()
    report = v.validate_defence(path, v.defence_settings(None), medians)
else:
    report = v.validate_attack(path, extra, 100, 640 * 1024 * 1024)
assert report["passed"], report["message"]
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""


def install_client(work: Path) -> Path:
    """Build the client's wheel and install it (without dependencies: the venv has them) into work/site."""
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), "./client"], cwd=ROOT, check=True
    )
    (wheel,) = wheels.glob("srs_client-*.whl")
    site = work / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    return site


def make_attack(work: Path) -> tuple[Path, Path, Path]:
    """Test and verification sets of three targets (the sample's, made by the worker's code) and an attack."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import pandas as pd

    from app.evaluation.defence import DefenceSettings, evaluate_defence

    sets, verification = work / "sets", work / "verification"
    sets.mkdir()
    verification.mkdir()
    result = evaluate_defence(SAMPLE, work, team_id=1, settings=DefenceSettings(), seed=1)
    for team in TARGETS:
        shutil.copy(result.test_path, sets / f"team_{team}_test.csv.zip")
        shutil.copy(result.verification_path, verification / f"team_{team}_verification.csv.zip")
    ids = pd.read_csv(result.test_path)["capture_id"].unique()
    frames = []
    for team in TARGETS:
        frame = pd.DataFrame(np.full((len(ids), 100), 0.01), columns=[f"proba_class_{c}" for c in range(1, 101)])
        frame.insert(0, "capture_id", ids)
        frame.insert(0, "team_id", team)
        frames.append(frame)
    attack = work / "attack.csv.zip"
    with zipfile.ZipFile(attack, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("attack.csv", pd.concat(frames).to_csv(index=False))
    return attack, sets, verification


def run_srs(site: Path, args: list[str], cwd: Path) -> dict:
    """`srs ARGS` in a fresh process: wall and CPU seconds from launch to exit."""
    code = f"import sys; sys.path.insert(0, {str(site)!r}); from srs_client.cli import main; main()"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(done.stdout) if done.stdout.strip() else {"passed": False, "message": done.stderr}
    if not report["passed"]:
        raise SystemExit(f"srs {' '.join(args)} failed: {report['message']}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": seconds, "cpu": cpu}


def run_worker(kind: str, path: Path, extra: Path, script: str = WORKER, base: Path = ROOT) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, str(base), kind, str(path), str(extra)],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    if done.returncode != 0:
        raise SystemExit(f"the worker's {kind} evaluation failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_floor() -> dict:
    """A fresh interpreter importing what any `srs validate` needs (numpy, pyarrow's CSV reader, click, rich)."""
    start = time.perf_counter()
    code = "import numpy, pyarrow, pyarrow.csv, pyarrow.compute, click, rich.console"
    subprocess.run([sys.executable, "-c", code], check=True)
    return {"seconds": time.perf_counter() - start, "cpu": 0.0}


def best(runs: list[dict]) -> dict:
    return {"seconds": min(run["seconds"] for run in runs), "cpu": min(run["cpu"] for run in runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-fail", action="store_true", help="print only; exit 0 even if a target is missed")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best time is kept)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f} before measuring: other processes share the cores, times are noisy")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        work = Path(tmp)
        site = install_client(work)
        attack, sets, verification = make_attack(work)
        cases = {
            "defence": (
                ["validate", "defence", str(SAMPLE), "--json"],
                ("defence", SAMPLE, site / "srs_client" / "reference.json"),
                ("defence", SAMPLE, SAMPLE),
            ),
            "attack": (
                ["validate", "attack", str(attack), "--sets", str(sets), "--json"],
                ("attack", attack, verification),
                ("attack", attack, sets),
            ),
        }
        for name, (srs_args, worker_args, work_args) in cases.items():
            worker = best([run_worker(*worker_args) for _ in range(args.repeat)])
            client = best([run_srs(site, srs_args, work) for _ in range(args.repeat)])
            inside = best([run_worker(*work_args, script=SRS_WORK, base=site) for _ in range(args.repeat)])
            rows.append((name, worker, client, inside))
        floor = best([start_floor() for _ in range(args.repeat)])["seconds"]
    header = (
        f"{'file':<8} {'worker s':>8} {'worker cpu':>10} {'srs s':>6} {'srs cpu':>7} {'ratio':>6} {'cpu ratio':>9}"
        f" {'srs work s':>10} {'work ratio':>10}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for name, worker, client, inside in rows:
        ratio = client["seconds"] / worker["seconds"]
        print(
            f"{name:<8} {worker['seconds']:>8.2f} {worker['cpu']:>10.2f} {client['seconds']:>6.2f} "
            f"{client['cpu']:>7.2f} {ratio:>5.2f}x {client['cpu'] / worker['cpu']:>8.2f}x"
            f" {inside['seconds']:>10.2f} {inside['seconds'] / worker['seconds']:>9.2f}x"
        )
        ok &= ratio <= TARGET_RATIO
    print("srs s: the whole command, launch to exit; srs work s: the same validation in one process after its imports")
    print(
        f"start-up floor (a fresh python importing numpy, pyarrow, click and rich, same run): {floor:.2f} s;"
        " srs s minus it: " + ", ".join(f"{n} {c['seconds'] - floor:.2f} s" for n, _, c, _ in rows)
    )
    print(
        f"target: srs validate within {TARGET_RATIO}x the worker's time on the same file -> {'met' if ok else 'MISSED'}"
    )
    return 0 if ok or args.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
