"""Benchmark the pages' figures for one attack on 300 captures of 100 cells: compute and draw the heat map (per-cell
recall), the ROC curve and the top-k chart, and a team's path over ten rounds; print the times and the SVG sizes.

Run: python bench/bench_charts.py [--repeat N] [--captures N]

The probabilities are a middling attack's (the true cell boosted over Dirichlet noise, about 70 % accuracy). Times are
the best of N runs (wall clock); each run computes from the probabilities and draws. The "first view" line adds what an
attack page's first view reads: the stored upload and labels (zipped CSVs in local storage); later views read the
computed figures from storage and only draw.
"""

import argparse
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import charts, create_app  # noqa: E402
from app.evaluation.attack import proba_columns, read_verification  # noqa: E402
from app.evaluation.figures import attack_curves, cell_counts, grid_shape  # noqa: E402
from app.services import figures  # noqa: E402
from app.services.similarity import read_upload  # noqa: E402
from app.storage import get_storage  # noqa: E402

NB_CELLS = 100


def middling_attack(nb_captures: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cells = rng.integers(1, NB_CELLS + 1, nb_captures)
    proba = rng.dirichlet(np.full(NB_CELLS, 0.3), nb_captures)
    proba[np.arange(nb_captures), cells - 1] += 0.3 * rng.random(nb_captures)
    return proba / proba.sum(axis=1, keepdims=True), cells


def best(repeat: int, work):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--captures", type=int, default=300)
    args = parser.parse_args()
    proba, cells = middling_attack(args.captures)
    app = create_app("testing", NB_CLASSES=NB_CELLS)

    def heatmap() -> str:
        counts = cell_counts(proba, cells, NB_CELLS)
        return charts.heatmap_svg(
            "leak-1", "Where the attack recognised the cells", counts.captures, counts.recognised,
            grid_shape(NB_CELLS), counts.most_exposed(), "the attack",
        )  # fmt: skip

    def curves() -> tuple[str, str]:
        computed = attack_curves(proba, cells).to_dict()
        target = figures.TargetCurves(2, "target-team", "private", computed)
        return figures.curves_svgs(SimpleNamespace(id=1), [target])

    rng = np.random.default_rng(1)
    boards = {
        n: {
            "generated": True,
            "scoring": "tradeoff",
            "public_subset": False,
            "rows": [
                {
                    "team_id": team,
                    "rank": team,
                    "score": float(rng.random()),
                    "score_pm": 0.05,
                    "attack_score": float(rng.random()),
                    "attack_score_pm": 0.04,
                    "defence_score": float(rng.random()),
                    "leakage_pm": 0.03,
                    "cost_factor": 0.8,
                }
                for team in range(1, 21)
            ],
        }
        for n in range(1, 11)
    }

    def path() -> tuple[str, str]:
        team = SimpleNamespace(id=3, name="team-3")
        return figures.team_path_svgs(team, figures.team_path(team, boards))

    folder = Path(tempfile.mkdtemp(prefix="bench-charts-"))
    app.config["UPLOAD_FOLDER"] = str(folder / "uploads")

    def stored(name: str, frame: pd.DataFrame) -> str:
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}.csv", frame.to_csv(index=False))
        key = f"bench/{name}.csv.zip"
        get_storage().save(key, path)
        return key

    def first_view(upload_key: str, labels_key: str) -> tuple[str, str]:
        """What an attack page's first view adds: read the stored upload and labels, then compute and draw."""
        ids, proba_read = read_upload(upload_key)[2]
        with get_storage().local_path(labels_key) as path:
            _, cells_read, public = read_verification(path, 2, NB_CELLS)
        computed = attack_curves(proba_read[~public], cells_read[~public]).to_dict()
        return figures.curves_svgs(SimpleNamespace(id=1), [figures.TargetCurves(2, "t", "private", computed)])

    with app.app_context():
        ids = np.arange(1, args.captures + 1)
        upload = pd.DataFrame(proba, columns=proba_columns(NB_CELLS))
        upload.insert(0, "capture_id", ids)
        upload.insert(0, "team_id", 2)
        public = (ids % 3 == 0).astype(int)
        labels = pd.DataFrame({"capture_id": ids, "cell_id": cells, "public": public})
        keys = stored("upload", upload), stored("verification", labels)
        curves()  # imports and first-call costs out of the figures
        read_time, _ = best(args.repeat, lambda: first_view(*keys))
        heat_time, heat_svg = best(args.repeat, heatmap)
        curve_time, (roc_svg, topk_svg) = best(args.repeat, curves)
        path_time, (score_svg, parts_svg) = best(args.repeat, path)
        computed = attack_curves(proba, cells)
    shutil.rmtree(folder)
    print(f"{args.captures} captures × {NB_CELLS} cells, best of {args.repeat}:")
    print(f"  heat map (per-cell recall + SVG):        {heat_time * 1000:7.1f} ms  SVG {len(heat_svg):>7,} bytes")
    print(
        f"  ROC + top-k (curves + both SVGs):        {curve_time * 1000:7.1f} ms  SVGs {len(roc_svg):>6,} + "
        f"{len(topk_svg):,} bytes ({len(computed.fpr)} ROC points kept, micro AUC {computed.micro_auc:.3f})"
    )
    print(
        f"  first view of an attack page (read the stored upload and labels, curves of the private two thirds, "
        f"draw): {read_time * 1000:.1f} ms"
    )
    print(
        f"  team path, 10 rounds × 20 teams (2 SVGs): {path_time * 1000:6.1f} ms  SVGs {len(score_svg):>6,} + "
        f"{len(parts_svg):,} bytes"
    )


if __name__ == "__main__":
    main()
