"""Benchmark one attacker's set (a defence's test pool under new ids, order and public subset) against its floor.

Run: python bench/bench_round_sets.py [--repeat N]

The pool is the sample upload's test set as the platform writes it when the defence is accepted (300 captures).
The floor is unzipping and parsing that test set with pyarrow (what any preparation must at least do); the
figure is relabel_test_pool (read both sets, draw ids and the public subset, reorder, write two zips), which a
worker runs once per match and a download runs itself when it finds its set not ready. Times are best of N
(wall clock, one process: the machine is shared, so compare the two figures of the same run).
"""

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"
MATCHES_PER_ROUND = 150 * 3  # a large course: 150 teams attacking 3 targets each


def best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from app.evaluation.defence import DefenceSettings, evaluate_defence, relabel_test_pool

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pool = evaluate_defence(SAMPLE, work, team_id=1, settings=DefenceSettings(), seed=1)

        def floor() -> None:
            with zipfile.ZipFile(pool.test_path) as archive:
                pa_csv.read_csv(pa.BufferReader(archive.read(archive.namelist()[0])))

        seeds = iter(range(10**6))

        def relabel() -> None:
            out = work / f"attacker{next(seeds)}"
            out.mkdir()
            relabel_test_pool(
                pool.test_path, pool.verification_path, out, team_id=1, seed=next(seeds), public_fraction=1 / 3
            )

        rows = pa_csv.read_csv(pa.BufferReader(zipfile.ZipFile(pool.test_path).read("team_1_test.csv"))).num_rows
        floor_s, relabel_s = best(args.repeat, floor), best(args.repeat, relabel)
    print(f"test pool: {pool.nb_test_captures} captures, {rows:,} rows")
    print(f"floor (unzip + parse the test set):   {floor_s * 1000:7.1f} ms")
    print(f"one attacker's set (relabel_test_pool): {relabel_s * 1000:7.1f} ms  ({relabel_s / floor_s:.1f}x the floor)")
    print(
        f"a round of {MATCHES_PER_ROUND} matches on one worker: {relabel_s * MATCHES_PER_ROUND:.0f} s; "
        f"a download preparing its 3 targets itself: {relabel_s * 3 * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
