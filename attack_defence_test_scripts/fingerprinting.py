#!/usr/bin/env python3
"""Example website-fingerprinting attack for the Secret Race Strolling competition.

Usage (in the folder where you unzipped the attack download)::

    python3 fingerprinting.py 1 4 5            # attack teams 1, 4 and 5
    python3 fingerprinting.py                  # attack every team_*_train.csv.zip found
    python3 fingerprinting.py 3 --dir sets -o attack.csv.zip

For each target team it reads ``team_{id}_train.csv.zip`` (columns
``cell_id,rep,direction_size,timestamp``) and ``team_{id}_test.csv.zip`` (columns
``capture_id,direction_size,timestamp``), turns every capture into one feature
vector, trains an extra-trees classifier on the labelled captures and writes the
class probabilities of every test capture to ``my_classification.csv.zip``, a zip
holding ``my_classification.csv`` with columns
``team_id,capture_id,proba_class_1..proba_class_N``. Upload that zip on the
attack page.

The features are two classic families from the literature:

* k-FP style summary features (Hayes & Danezis, USENIX Security 2016): packet and
  byte counts per direction, inter-arrival times, transmission-time quantiles,
  packet ordering, "concentration" of outgoing packets in chunks of 20 packets,
  packets per second, the first and last 30 packets, packet-size histograms.
* CUMUL (Panchenko et al., NDSS 2016): the cumulative sum of signed packet sizes
  sampled at 100 evenly spaced points of the cumulative absolute size.

How to extend it (the places to touch are marked ``EXTEND``):

* Add features: write a function that takes a :class:`Captures` and returns an
  array of shape ``(n_captures, k)``, and append it in :func:`extract_features`.
  Keep it vectorised (numpy over all packets at once, grouping with
  ``np.bincount``/``np.add.reduceat`` on ``captures.group``), as a Python loop over
  1.5 million packets is slow.
* Change the classifier: edit :func:`make_classifier`. Anything from scikit-learn
  with ``predict_proba`` works (random forests, gradient boosting, an SVM with
  ``probability=True`` on scaled features, ...). Deep models (DF, Var-CNN) on the
  raw direction sequence are the state of the art if you have the time.
* Evaluate before uploading: ``--cv 5`` reports cross-validated accuracy on each
  team's training set, so you can compare ideas without spending an upload.

Only pandas, numpy and scikit-learn are needed.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import time
import zipfile
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

# Number of cumulative-size samples in the CUMUL representation (100 in the paper).
CUMUL_POINTS = 100
# k-FP measures the concentration of outgoing packets in chunks of this many packets.
CHUNK = 20
# How many leading chunks / seconds are kept as individual features (the rest are
# summarised by statistics only).
LEADING_BINS = 20
# Packets at the start and end of a capture carry the handshake and the last
# response; k-FP counts their directions separately.
EDGE_PACKETS = 30
# Absolute packet-size bin edges (IP total length, bytes). TCP/TLS over Tor
# produces a few typical sizes (ACK-sized, ~576, ~740, full 1500-byte frames).
SIZE_EDGES = np.array([0, 100, 300, 577, 700, 1000, 1400, 1499, 1501, 65536])


@dataclass
class Captures:
    """All packets of a set of captures, sorted so that each capture is contiguous.

    ``group[i]`` is the capture index (0..n-1) of packet ``i``, ``position[i]`` its
    index inside its capture, ``size`` the signed size (+ client to server) and
    ``time`` the time since the capture's first packet.
    """

    keys: pd.DataFrame  # one row per capture: its identifying columns
    group: np.ndarray
    position: np.ndarray
    starts: np.ndarray  # index of each capture's first packet
    counts: np.ndarray  # packets per capture
    size: np.ndarray
    time: np.ndarray

    @property
    def n(self) -> int:
        return len(self.counts)


def group_captures(frame: pd.DataFrame, key_columns: list[str]) -> Captures:
    """Sort packets by capture, keeping packet order inside a capture."""
    keys, codes = _factorize(frame, key_columns)
    # A stable sort keeps the original packet order inside each capture even if
    # the file interleaves captures.
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    size = frame["direction_size"].to_numpy(dtype=np.float64)[order]
    time_ = frame["timestamp"].to_numpy(dtype=np.float64)[order]

    counts = np.bincount(codes, minlength=len(keys))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(codes)) - starts[codes]
    # Timestamps should already start at 0 in each capture; subtracting the
    # first one makes the features robust to files where they do not.
    time_ = time_ - time_[starts][codes]
    return Captures(keys, codes, position, starts, counts, size, time_)


def _factorize(frame: pd.DataFrame, key_columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Number the distinct key tuples 0..n-1 in sorted order; return (keys, codes)."""
    # Encode each column as sorted integer codes and fold them into one int64 key
    # (much faster than hashing tuples), then number the distinct keys.
    combined = np.zeros(len(frame), dtype=np.int64)
    levels = []
    for column in key_columns:
        codes, uniques = pd.factorize(frame[column], sort=True)
        combined = combined * len(uniques) + codes
        levels.append(np.asarray(uniques))
    distinct, codes = np.unique(combined, return_inverse=True)
    keys = {}
    for column, uniques in zip(reversed(key_columns), reversed(levels), strict=True):
        keys[column] = uniques[distinct % len(uniques)]
        distinct = distinct // len(uniques)
    return pd.DataFrame({column: keys[column] for column in key_columns}), codes.astype(np.int64)


# --------------------------------------------------------------------------- #
# Vectorised per-capture statistics
# --------------------------------------------------------------------------- #


def group_stats(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Count, mean, std, min, quartiles, max of ``values`` per group (0 for empty groups).

    ``group`` need not be sorted; returns shape ``(n, 8)``.
    """
    values = np.asarray(values, dtype=np.float64)
    count = np.bincount(group, minlength=n).astype(np.float64)
    total = np.bincount(group, weights=values, minlength=n)
    squares = np.bincount(group, weights=values * values, minlength=n)
    safe = np.maximum(count, 1)
    mean = total / safe
    std = np.sqrt(np.maximum(squares / safe - mean * mean, 0.0))

    # Order statistics: sort by (group, value), then each group's k-th smallest
    # value sits at start[group] + k.
    ordered = values[np.lexsort((values, group))]
    start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    last = np.maximum(count.astype(np.int64) - 1, 0)
    present = count > 0
    padded = np.append(ordered, 0.0)  # index len(values) is a safe dummy for empty groups

    def at(fraction: float) -> np.ndarray:
        index = np.where(present, start + np.round(fraction * last).astype(np.int64), len(values))
        return padded[index]

    columns = [count, mean, std, at(0.0), at(0.25), at(0.5), at(0.75), at(1.0)]
    return np.column_stack(columns)


def counts_per_bin(captures: Captures, bin_of_packet: np.ndarray, weights: np.ndarray | None):
    """Sum ``weights`` (or count packets) per (capture, bin); return (bin_group, bin_index, sums)."""
    # Combine capture and bin into one integer key; np.unique gives the occupied bins.
    width = int(bin_of_packet.max()) + 1 if len(bin_of_packet) else 1
    key = captures.group * width + bin_of_packet
    unique, inverse = np.unique(key, return_inverse=True)
    sums = np.bincount(inverse, weights=weights, minlength=len(unique))
    return unique // width, unique % width, sums


def leading_matrix(n: int, bin_group, bin_index, sums, width: int) -> np.ndarray:
    """Scatter per-bin sums of the first ``width`` bins into an ``(n, width)`` matrix."""
    matrix = np.zeros((n, width))
    keep = bin_index < width
    matrix[bin_group[keep], bin_index[keep]] = sums[keep]
    return matrix


def diffs_within(group: np.ndarray, values: np.ndarray):
    """Consecutive differences of ``values`` inside each group (inputs sorted by group)."""
    same = group[1:] == group[:-1]
    return group[1:][same], np.diff(values)[same]


# --------------------------------------------------------------------------- #
# Feature families
# --------------------------------------------------------------------------- #


def kfp_features(c: Captures) -> np.ndarray:
    """k-FP style summary features, one row per capture."""
    n, g = c.n, c.group
    out = c.size > 0
    inc = ~out
    absolute = np.abs(c.size)
    features = []

    # Volume: packets and bytes per direction, and their ratios. These alone
    # separate pages that return very different amounts of data.
    n_out = np.bincount(g, weights=out, minlength=n)
    n_in = np.bincount(g, weights=inc, minlength=n)
    b_out = np.bincount(g, weights=absolute * out, minlength=n)
    b_in = np.bincount(g, weights=absolute * inc, minlength=n)
    total = np.maximum(c.counts, 1)
    features += [c.counts, n_out, n_in, n_out / total, n_in / total, b_out, b_in]
    features += [b_out / np.maximum(b_out + b_in, 1), np.maximum.reduceat(c.time, c.starts)]

    # Timing: inter-arrival times overall and per direction, and when the
    # packets of each direction were sent (transmission-time quantiles).
    features.append(group_stats(*diffs_within(g, c.time), n))
    for mask in (out, inc):
        features.append(group_stats(*diffs_within(g[mask], c.time[mask]), n))
        features.append(group_stats(g[mask], c.time[mask], n))

    # Ordering: where in the capture the outgoing / incoming packets are.
    for mask in (out, inc):
        features.append(group_stats(g[mask], c.position[mask], n)[:, 1:3])

    # Concentration: outgoing packets per chunk of 20 packets (requests are
    # bursty and their spacing depends on the page's resources).
    bin_group, bin_index, sums = counts_per_bin(c, c.position // CHUNK, out.astype(float))
    features.append(group_stats(bin_group, sums, n)[:, 1:])
    features.append(leading_matrix(n, bin_group, bin_index, sums, LEADING_BINS))

    # Packets per second, a coarse picture of the download's shape over time.
    seconds = np.floor(c.time).astype(np.int64)
    bin_group, bin_index, sums = counts_per_bin(c, seconds, None)
    features.append(group_stats(bin_group, sums, n)[:, 1:])
    features.append(leading_matrix(n, bin_group, bin_index, sums, LEADING_BINS))

    # First and last packets: handshake and final response.
    first = c.position < EDGE_PACKETS
    last = c.position >= (c.counts[g] - EDGE_PACKETS)
    for edge in (first, last):
        features.append(np.bincount(g, weights=edge & out, minlength=n))
        features.append(np.bincount(g, weights=edge & inc, minlength=n))

    # Sizes: histogram and statistics per direction (padding defences show up here).
    size_bin = np.searchsorted(SIZE_EDGES, absolute, side="right") - 1
    width = len(SIZE_EDGES) - 1
    for mask in (out, inc):
        histogram = np.zeros((n, width))
        np.add.at(histogram, (g[mask], size_bin[mask]), 1)
        features.append(histogram)
        features.append(group_stats(g[mask], absolute[mask], n)[:, 1:])

    return np.column_stack(features)


def cumul_features(c: Captures, points: int = CUMUL_POINTS) -> np.ndarray:
    """CUMUL: cumulative signed size sampled at evenly spaced cumulative absolute sizes."""
    n, g = c.n, c.group
    signed = np.cumsum(c.size)
    absolute = np.cumsum(np.abs(c.size))
    # Make the sums restart at each capture by subtracting the running total
    # reached just before the capture's first packet.
    signed -= np.concatenate(([0.0], signed))[c.starts][g]
    absolute -= np.concatenate(([0.0], absolute))[c.starts][g]
    totals = np.maximum(absolute[c.starts + c.counts - 1], 1)

    # One np.interp call for all captures: capture k lives on x in [2k, 2k+1]
    # (normalised cumulative size), with an explicit (2k, 0) start point. The
    # gap of 1 between captures keeps their curves from touching.
    x = 2.0 * g + absolute / totals[g]
    start_x = 2.0 * np.arange(n)
    xs = np.concatenate((start_x, x))
    ys = np.concatenate((np.zeros(n), signed))
    order = np.argsort(xs, kind="stable")
    query = start_x[:, None] + np.arange(1, points + 1)[None, :] / points
    return np.interp(query.ravel(), xs[order], ys[order]).reshape(n, points)


def extract_features(captures: Captures) -> np.ndarray:
    """All features of all captures, shape ``(n_captures, n_features)``."""
    # EXTEND: append your own feature families here.
    return np.hstack([kfp_features(captures), cumul_features(captures)])


def make_classifier(seed: int) -> ExtraTreesClassifier:
    """The classifier trained for each target team."""
    # EXTEND: try other models here. Extra trees are fast, need no feature
    # scaling and give usable probabilities, which ROC-AUC rewards.
    return ExtraTreesClassifier(n_estimators=250, n_jobs=-1, random_state=seed)


# --------------------------------------------------------------------------- #
# Input / output
# --------------------------------------------------------------------------- #


def read_csv_zip(path: str, columns: list[str]) -> pd.DataFrame:
    """Read a zipped CSV and check that it has ``columns``."""
    frame = pd.read_csv(path, compression="zip")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise SystemExit(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def attack_team(team_id: int, folder: str, seed: int, cv: int):
    """Train on one team's train set; return (test capture ids, classes, probabilities, max class)."""
    train = read_csv_zip(
        os.path.join(folder, f"team_{team_id}_train.csv.zip"),
        ["cell_id", "rep", "direction_size", "timestamp"],
    )
    test = read_csv_zip(
        os.path.join(folder, f"team_{team_id}_test.csv.zip"),
        ["capture_id", "direction_size", "timestamp"],
    )
    train_captures = group_captures(train, ["cell_id", "rep"])
    test_captures = group_captures(test, ["capture_id"])
    x_train = extract_features(train_captures)
    y_train = train_captures.keys["cell_id"].to_numpy()
    x_test = extract_features(test_captures)

    if cv:
        folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        scores = cross_val_score(make_classifier(seed), x_train, y_train, cv=folds)
        print(f"team {team_id}: {cv}-fold CV accuracy {scores.mean():.3f} ± {scores.std():.3f}")

    classifier = make_classifier(seed).fit(x_train, y_train)
    proba = classifier.predict_proba(x_test)
    n_classes = max(int(y_train.max()), len(classifier.classes_))
    return test_captures.keys["capture_id"].to_numpy(), classifier.classes_, proba, n_classes


def to_class_columns(classes: np.ndarray, proba: np.ndarray, n_classes: int) -> np.ndarray:
    """Place probabilities in columns 1..n_classes (absent classes get 0) and renormalise."""
    full = np.zeros((len(proba), n_classes))
    inside = (classes >= 1) & (classes <= n_classes)
    full[:, classes[inside].astype(int) - 1] = proba[:, inside]
    full = np.clip(np.nan_to_num(full, nan=0.0), 0.0, 1.0)
    sums = full.sum(axis=1, keepdims=True)
    # A row with no mass left (cannot happen with trees, but a custom model
    # might) falls back to the uniform distribution rather than dividing by 0.
    return np.where(sums > 0, full / np.where(sums > 0, sums, 1), 1.0 / n_classes)


def write_classification(frame: pd.DataFrame, path: str) -> None:
    """Write ``frame`` as the single CSV inside the zip ``path``."""
    member = os.path.basename(path)
    member = member[: -len(".zip")] if member.endswith(".zip") else member + ".csv"
    if not member.endswith(".csv"):
        member += ".csv"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, frame.to_csv(index=False))


def discover_teams(folder: str) -> list[int]:
    """Team ids of every team_{id}_train.csv.zip in ``folder``."""
    found = glob.glob(os.path.join(folder, "team_*_train.csv.zip"))
    ids = [re.fullmatch(r"team_(\d+)_train\.csv\.zip", os.path.basename(p)) for p in found]
    return sorted(int(m.group(1)) for m in ids if m)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Example website-fingerprinting attack: train on each target team's "
        "train set and write class probabilities for its test set.",
    )
    parser.add_argument("teams", nargs="*", type=int, help="target team ids (default: every team_*_train.csv.zip)")
    parser.add_argument("--dir", default=".", help="folder holding the team_{id}_*.csv.zip files")
    parser.add_argument("-o", "--output", default="my_classification.csv.zip", help="zip to write (uploadable)")
    parser.add_argument(
        "--nb-classes",
        type=int,
        default=None,
        help="number of classes N (default: the largest cell_id seen in the train sets)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the classifier")
    parser.add_argument("--cv", type=int, default=0, metavar="K", help="also report K-fold CV accuracy on train")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    teams = args.teams or discover_teams(args.dir)
    if not teams:
        print(f"no team_{{id}}_train.csv.zip found in {args.dir!r}", file=sys.stderr)
        return 2
    for team in teams:
        for kind in ("train", "test"):
            path = os.path.join(args.dir, f"team_{team}_{kind}.csv.zip")
            if not os.path.exists(path):
                print(f"missing {path}: unzip the attack download here", file=sys.stderr)
                return 2

    results = []
    for team in teams:
        started = time.perf_counter()
        results.append((team, *attack_team(team, args.dir, args.seed, args.cv)))
        elapsed = time.perf_counter() - started
        print(f"team {team}: {len(results[-1][1])} test captures classified in {elapsed:.1f} s")

    # All teams share one file, so they share one N: the platform's number of cells.
    n_classes = args.nb_classes or max(result[4] for result in results)
    frames = []
    for team, capture_ids, classes, proba, _ in results:
        columns = [f"proba_class_{k}" for k in range(1, n_classes + 1)]
        frame = pd.DataFrame(to_class_columns(classes, proba, n_classes), columns=columns)
        frame.insert(0, "capture_id", capture_ids)
        frame.insert(0, "team_id", team)
        frames.append(frame)
    write_classification(pd.concat(frames, ignore_index=True), args.output)
    print(f"wrote {args.output} ({n_classes} classes): upload it on the attack page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
