"""Features of website-fingerprinting traces for the platform's baseline attack, one row per capture, computed
with numpy segment operations on many captures at once (in slices of about CHUNK_ROWS packets, so that the
per-packet arrays they need stay small whatever the size of the set):
- k-FP style (Hayes and Danezis, USENIX Security 2016): packet and byte counts per direction, packet sizes per
  direction (statistics and a coarse histogram), timing statistics (transmission-time quartiles, inter-arrival
  times overall and per direction, packets per second), bursts (runs of packets in one direction), ordering
  (positions of incoming and outgoing packets, packets of each direction among the first and last 30, outgoing
  share in 20 equal slices of the trace) and the signed sizes of the first 20 packets;
- CUMUL (Panchenko et al., NDSS 2016): packet and byte counts per direction plus the cumulative signed size
  curve sampled at 100 points evenly spaced along the cumulative absolute size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CUMUL_POINTS = 100
FIRST_PACKETS = 20
EDGE_PACKETS = 30
SLICES = 20
SIZE_BINS = (0, 100, 600, 1100, 1400)
QUARTILES = (0.25, 0.5, 0.75)
# Packets whose features are computed together: the features hold about fifteen arrays of 8 bytes per packet at
# their peak, 130 MB for a slice of a million packets where the 5.7 M packets of a 6.1 M-row defence's train set
# took 680 MB at once.
CHUNK_ROWS = 1 << 20


@dataclass
class CaptureRows:
    """Packets of several captures, each capture's rows contiguous and in time order."""

    direction_size: np.ndarray  # signed: + client to server (outgoing), - server to client (incoming)
    timestamp: np.ndarray
    length: np.ndarray  # number of rows of each capture, in capture order

    def __len__(self) -> int:
        return len(self.length)


# --- segment helpers: every capture is a contiguous segment of rows -------------------------------------------


def _starts(length: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64)


def _masked_stats(values: np.ndarray, groups: np.ndarray, nb: int) -> np.ndarray:
    """Count, mean, std, min, max of values per group (groups need not be contiguous); 0 for empty groups."""
    count = np.bincount(groups, minlength=nb).astype(np.float64)
    total = np.bincount(groups, weights=values, minlength=nb)
    squares = np.bincount(groups, weights=values * values, minlength=nb)
    safe = np.maximum(count, 1)
    mean = total / safe
    std = np.sqrt(np.maximum(squares / safe - mean * mean, 0.0))
    low = np.full(nb, np.inf)
    high = np.full(nb, -np.inf)
    np.minimum.at(low, groups, values)
    np.maximum.at(high, groups, values)
    empty = count == 0
    low[empty] = 0.0
    high[empty] = 0.0
    return np.column_stack((count, mean, std, low, high))


def _sorted_by_group(values: np.ndarray, groups: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Values sorted by group, then by value; and the count of each group.

    One float sort instead of a lexsort (five times faster): values are scaled into [0, 1] and offset by twice
    their group, which keeps groups apart; scaling back costs about 1e-12 of the value range in precision.
    """
    count = np.bincount(groups, minlength=nb)
    if len(values) == 0:
        return values.astype(np.float64), count
    low, span = float(values.min()), float(values.max() - values.min()) or 1.0
    key = (values - low) / span + 2.0 * groups
    key.sort()
    key -= 2.0 * np.repeat(np.arange(nb, dtype=np.float64), count)
    key *= span
    key += low
    return key, count


def _quantiles(values: np.ndarray, groups: np.ndarray, nb: int, qs: tuple[float, ...]) -> np.ndarray:
    """Linear-interpolated quantiles of values per group, one column per q; 0 for empty groups."""
    ordered, count = _sorted_by_group(np.asarray(values, dtype=np.float64), groups, nb)
    if len(ordered) == 0:
        return np.zeros((nb, len(qs)))
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    last = np.maximum(count - 1, 0)
    columns = []
    for q in qs:
        position = q * last
        below = np.floor(position).astype(np.int64)
        fraction = position - below
        low_index = np.minimum(start + below, len(ordered) - 1)
        high_index = np.minimum(start + np.minimum(below + 1, last), len(ordered) - 1)
        value = ordered[low_index] * (1 - fraction) + ordered[high_index] * fraction
        columns.append(np.where(count > 0, value, 0.0))
    return np.column_stack(columns)


def _gaps(times: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time between consecutive rows of the same group (rows in time order within each group)."""
    same = groups[1:] == groups[:-1]
    return (times[1:] - times[:-1])[same], groups[1:][same]


def _timing_features(times: np.ndarray, groups: np.ndarray, nb: int) -> np.ndarray:
    gaps, gap_groups = _gaps(times, groups)
    stats = _masked_stats(gaps, gap_groups, nb)[:, 1:]  # mean, std, min, max
    return np.column_stack((stats, _quantiles(gaps, gap_groups, nb, QUARTILES)))


STATS = ("mean", "std", "min", "max")
QUARTILE_NAMES = ("q25", "q50", "q75")
TIMING = (*STATS, *QUARTILE_NAMES)


class _Table:
    """Feature columns with their names, appended block by block."""

    def __init__(self, nb: int) -> None:
        self.nb, self.blocks, self.names = nb, [], []

    def add(self, prefix: str, values: np.ndarray, suffixes: tuple[str, ...] | None = None) -> None:
        values = np.asarray(values, dtype=np.float64).reshape(self.nb, -1)
        if suffixes is None:
            suffixes = ("",) if values.shape[1] == 1 else tuple(str(i) for i in range(values.shape[1]))
        if len(suffixes) != values.shape[1]:
            raise AssertionError(f"{prefix}: {len(suffixes)} names for {values.shape[1]} columns")
        self.blocks.append(values)
        self.names += [f"{prefix}_{suffix}" if suffix else prefix for suffix in suffixes]


def _features(rows: CaptureRows) -> tuple[np.ndarray, list[str]]:
    nb = len(rows)
    length = np.asarray(rows.length, dtype=np.int64)
    if np.any(length <= 0):
        raise ValueError("every capture needs at least one packet")
    size = np.asarray(rows.direction_size, dtype=np.float64)
    times = np.asarray(rows.timestamp, dtype=np.float64)
    if len(size) != int(length.sum()) or len(times) != len(size):
        raise ValueError("the capture lengths do not add up to the number of rows")
    start = _starts(length)
    group = np.repeat(np.arange(nb), length)
    position = np.arange(len(size)) - start[group]  # index of the packet within its capture
    times = times - times[start][group]  # relative to the capture's first packet
    outgoing = size > 0
    incoming = ~outgoing
    magnitude = np.abs(size)
    directions = (("out", outgoing, group[outgoing]), ("in", incoming, group[incoming]))
    table = _Table(nb)

    # Counts and volumes.
    n_out = np.bincount(group[outgoing], minlength=nb).astype(np.float64)
    n_in = length - n_out
    bytes_out = np.bincount(group[outgoing], weights=magnitude[outgoing], minlength=nb)
    bytes_in = np.bincount(group[incoming], weights=magnitude[incoming], minlength=nb)
    table.add("packets", length)
    table.add("packets_in", n_in)
    table.add("packets_out", n_out)
    table.add("share_out", n_out / length)
    table.add("bytes_in", bytes_in)
    table.add("bytes_out", bytes_out)
    table.add("share_bytes_out", bytes_out / np.maximum(bytes_in + bytes_out, 1))

    # Packet sizes per direction: statistics, quartiles and a coarse histogram (shares of the direction).
    for name, mask, groups in directions:
        values = magnitude[mask]
        table.add(f"size_{name}", _masked_stats(values, groups, nb)[:, 1:], STATS)
        table.add(f"size_{name}", _quantiles(values, groups, nb, QUARTILES), QUARTILE_NAMES)
        bins = np.digitize(values, SIZE_BINS[1:])
        histogram = np.bincount(groups * len(SIZE_BINS) + bins, minlength=nb * len(SIZE_BINS))
        per_direction = np.maximum(np.bincount(groups, minlength=nb), 1)[:, None]
        shares = histogram.reshape(nb, len(SIZE_BINS)) / per_direction
        table.add(f"size_{name}_from", shares, tuple(map(str, SIZE_BINS)))

    # Timing: duration, transmission-time quartiles and inter-arrival times, overall and per direction.
    table.add("duration", np.maximum.reduceat(times, start))
    table.add("time", _quantiles(times, group, nb, QUARTILES), QUARTILE_NAMES)
    table.add("gap", _timing_features(times, group, nb), TIMING)
    for name, mask, groups in directions:
        table.add(f"time_{name}", _quantiles(times[mask], groups, nb, (*QUARTILES, 1.0)), (*QUARTILE_NAMES, "last"))
        table.add(f"gap_{name}", _timing_features(times[mask], groups, nb), TIMING)

    # Packets per second (k-FP) over every second the capture spans, empty seconds included. Only non-empty
    # seconds are materialised, so a capture lasting hours costs no more memory than its packets.
    second = np.floor(times).astype(np.int64)
    spanned = (second[start + length - 1] + 1).astype(np.float64)
    new_second = np.ones(len(size), dtype=bool)
    new_second[1:] = (second[1:] != second[:-1]) | (group[1:] != group[:-1])
    second_start = np.flatnonzero(new_second)
    busy = np.diff(np.append(second_start, len(size))).astype(np.float64)  # packets of each non-empty second
    busy_group = group[second_start]
    nb_busy = np.bincount(busy_group, minlength=nb)
    mean = length / spanned
    squares = np.bincount(busy_group, weights=busy * busy, minlength=nb) / spanned
    busy_stats = _masked_stats(busy, busy_group, nb)
    lowest = np.where(nb_busy < spanned, 0.0, busy_stats[:, 3])  # an empty second counts 0 packets
    per_second = np.column_stack((mean, np.sqrt(np.maximum(squares - mean * mean, 0.0)), lowest, busy_stats[:, 4]))
    table.add("per_second", per_second, STATS)
    table.add("per_busy_second", _quantiles(busy, busy_group, nb, (0.5,)), ("q50",))
    table.add("busy_seconds", nb_busy / spanned)

    # Bursts: maximal runs of packets in one direction.
    new_run = np.ones(len(size), dtype=bool)
    new_run[1:] = (outgoing[1:] != outgoing[:-1]) | (group[1:] != group[:-1])
    run_start = np.flatnonzero(new_run)
    run_group = group[run_start]
    run_length = np.diff(np.append(run_start, len(size))).astype(np.float64)
    run_bytes = np.add.reduceat(magnitude, run_start)
    run_out = outgoing[run_start]
    table.add("bursts", np.bincount(run_group, minlength=nb))
    for name, mask in (("out", run_out), ("in", ~run_out)):
        table.add(f"burst_{name}_packets", _masked_stats(run_length[mask], run_group[mask], nb), ("count", *STATS))
        table.add(f"burst_{name}_bytes", _masked_stats(run_bytes[mask], run_group[mask], nb)[:, 1:], STATS)

    # Ordering: where the packets of each direction sit, and the first and last packets.
    for name, mask, groups in directions:
        table.add(f"position_{name}", _masked_stats(position[mask].astype(np.float64), groups, nb)[:, 1:3], STATS[:2])
    from_end = length[group] - 1 - position
    for edge, near in (("first", position < EDGE_PACKETS), ("last", from_end < EDGE_PACKETS)):
        for name, mask, _ in directions:
            table.add(f"{edge}{EDGE_PACKETS}_{name}", np.bincount(group, weights=mask & near, minlength=nb))
    first = np.zeros((nb, FIRST_PACKETS))
    early = position < FIRST_PACKETS
    first[group[early], position[early]] = size[early]
    table.add("first_size", first)
    piece = group * SLICES + (position * SLICES) // length[group]
    out_per_slice = np.bincount(piece, weights=outgoing, minlength=nb * SLICES).reshape(nb, SLICES)
    per_slice = np.bincount(piece, minlength=nb * SLICES).reshape(nb, SLICES)
    table.add("slice_share_out", out_per_slice / np.maximum(per_slice, 1))

    # CUMUL: the cumulative signed size sampled at evenly spaced cumulative absolute sizes. The absolute
    # cumulative sum over all rows rises monotonically, so one interpolation serves every capture.
    absolute = np.concatenate(([0.0], np.cumsum(magnitude)))
    signed = np.concatenate(([0.0], np.cumsum(size)))
    base_abs, base_signed = absolute[start], signed[start]
    total = absolute[start + length] - base_abs
    steps = np.arange(1, CUMUL_POINTS + 1) / CUMUL_POINTS
    queries = base_abs[:, None] + total[:, None] * steps[None, :]
    curve = np.interp(queries.ravel(), absolute, signed).reshape(nb, CUMUL_POINTS) - base_signed[:, None]
    table.add("cumul", curve, tuple(str(i) for i in range(1, CUMUL_POINTS + 1)))

    features = np.hstack(table.blocks) if table.blocks else np.zeros((nb, 0))
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0), table.names


def extract_features(rows: CaptureRows) -> np.ndarray:
    """Return the k-FP-style and CUMUL features of every capture (captures × features, float64).

    Captures must hold at least one packet; rows of each capture are contiguous and in time order.
    Column j is named feature_names()[j]. Features of a capture do not depend on the other captures.

    Raises:
        ValueError: a capture has no packet, or the lengths do not add up to the rows.
    """
    if len(rows) == 0:
        return np.zeros((0, len(feature_names())))
    length = np.asarray(rows.length, dtype=np.int64)
    if np.any(length <= 0):
        raise ValueError("every capture needs at least one packet")
    bounds = np.concatenate(([0], np.cumsum(length)))  # the first row of each capture, then the end
    if len(rows.direction_size) != bounds[-1] or len(rows.timestamp) != bounds[-1]:
        raise ValueError("the capture lengths do not add up to the number of rows")
    features = np.empty((len(length), len(feature_names())))
    first = 0
    while first < len(length):  # the captures ending within CHUNK_ROWS rows of the slice's start, at least one
        last = max(int(np.searchsorted(bounds, bounds[first] + CHUNK_ROWS, side="right")) - 1, first + 1)
        packets = slice(bounds[first], bounds[last])
        features[first:last] = _features(
            CaptureRows(rows.direction_size[packets], rows.timestamp[packets], length[first:last])
        )[0]
        first = last
    return features


def feature_names() -> list[str]:
    """Names of the columns extract_features returns, in order."""
    return _features(CaptureRows(np.array([100, -200]), np.array([0.0, 0.5]), np.array([2])))[1]
