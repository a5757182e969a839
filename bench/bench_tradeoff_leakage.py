"""The tradeoff board before and after leakage moved from ROC-AUC to accuracy, on the sample and two defences.

Run: python bench/bench_tradeoff_leakage.py [--seed S]

Builds the undefended sample, every packet padded to 1500 bytes, and FRONT-style dummies (bench_baseline.py
builds them the same way), splits each as the platform does, runs the platform's baseline attack on each, and
prints per defence: overheads, accuracy, top-5, ROC-AUC, the leakage under the previous formula
2 × (ROC-AUC − 0.5) and under the current one (accuracy − 1/C) / (1 − 1/C), the defence score under each, and
the rank the defences get by defence score under each. The board itself ranks by defence score + attack score;
with the same attackers on every defence, the attack scores are equal and the defence score decides.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_baseline import attack_each, front, padded, read_sample

from app.evaluation.tradeoff import advantage, defence_score

NB_CLASSES = 100


def ranks(values: dict[str, float]) -> dict[str, int]:
    order = sorted(values, key=values.get, reverse=True)
    return {name: order.index(name) + 1 for name in values}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="seed of the split, the dummies and the attack")
    args = parser.parse_args()
    sample = read_sample()
    defences = {"undefended": sample, "padded to 1500 B": padded(sample), "FRONT-style dummies": front(sample, 1)}
    results = {}
    for name, _, bandwidth, duration, run in attack_each(defences, sample, args.seed, 1):
        results[name] = (bandwidth, duration, run)
    before, after = {}, {}
    rows = []
    for name, (bandwidth, duration, run) in results.items():
        old = advantage(run["roc_auc"], 2)  # 2 × (ROC-AUC − 0.5): the accuracy advantage of two classes
        new = advantage(run["accuracy"], NB_CLASSES)
        before[name] = defence_score(old, bandwidth, duration)
        after[name] = defence_score(new, bandwidth, duration)
        rows.append((name, bandwidth, duration, run, old, new))
    rank_before, rank_after = ranks(before), ranks(after)
    header = (
        f"{'defence':<20} {'bandwidth':>9} {'time':>6} {'accuracy':>8} {'top-5':>6} {'ROC-AUC':>7} "
        f"{'leak AUC':>8} {'leak acc':>8} {'def. AUC':>8} {'def. acc':>8} {'rank AUC':>8} {'rank acc':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, bandwidth, duration, run, old, new in rows:
        print(
            f"{name:<20} {bandwidth:>+9.0%} {duration:>+6.0%} {run['accuracy']:>8.1%} {run['top5']:>6.1%} "
            f"{run['roc_auc']:>7.3f} {old:>8.3f} {new:>8.3f} {before[name]:>8.3f} {after[name]:>8.3f} "
            f"{rank_before[name]:>8} {rank_after[name]:>8}"
        )
    print(f"chance: accuracy {1 / NB_CLASSES:.1%} over {NB_CLASSES} cells; ROC-AUC 0.5")
    print("leak = leakage (0 private .. 1 fully readable); def. = defence score (1 − leakage) × cost factor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
