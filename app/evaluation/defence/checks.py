"""Checks a student can act on: the columns, the types, the sizes and the captures, with their messages.

Row numbers in messages are *line numbers of the CSV file*, the header being line 1.
"""

import math

import numpy as np

from ..checks import MAX_EXAMPLES, failed, have, list_values, passed, plural
from ..errors import CheckResult
from .captures import Captures, captures_per_cell
from .settings import DefenceSettings
from .split import quota_per_cell
from .traces import DefenceTraces

MAX_PACKET_SIZE = 65535
CHECK_NAMES = (
    "columns",
    "types",
    "sizes",
    "cells",
    "repetitions",
    "capture_length",
    "capture_count",
)


def check_timestamps(traces: DefenceTraces) -> CheckResult:
    """Timestamps are finite and not negative (reported under `types`, with the other value checks)."""
    timestamp = traces.timestamp
    bad = np.flatnonzero(~(timestamp >= 0) | ~np.isfinite(timestamp))
    if len(bad) == 0:
        return passed(
            "types",
            "cell_id, rep and direction_size are whole numbers and timestamp a finite number >= 0.",
        )
    examples = []
    for row in bad[:MAX_EXAMPLES]:
        value = float(timestamp[row])
        why = "is negative" if value < 0 and math.isfinite(value) else "is not a finite number"
        examples.append(f"line {traces.line(row)}: timestamp = {value!r} {why}")
    return failed(
        name="types",
        message=(
            f"{plural(len(bad), 'row')} {have(len(bad))} a timestamp that is negative or not a finite number: "
            "timestamps are seconds since the capture's first packet (line numbers count the header as line 1)."
        ),
        count=len(bad),
        examples=examples,
    )


def check_sizes(traces: DefenceTraces) -> CheckResult:
    """Packet sizes are non-zero and fit an IP packet."""
    size = traces.direction_size
    bad = np.flatnonzero((size == 0) | (size > MAX_PACKET_SIZE) | (size < -MAX_PACKET_SIZE))
    if len(bad) == 0:
        return passed("sizes", f"Every direction_size is non-zero and at most {MAX_PACKET_SIZE} in absolute value.")
    return failed(
        name="sizes",
        message=(
            f"{plural(len(bad), 'row')} {have(len(bad))} a direction_size of 0 or beyond ±{MAX_PACKET_SIZE}: "
            "use the packet's size in bytes, positive when sent by the client, negative when received "
            "(line numbers count the header as line 1)."
        ),
        count=len(bad),
        examples=[
            f"line {traces.line(r)}: direction_size = {int(traces.direction_size[r])}" for r in bad[:MAX_EXAMPLES]
        ],
    )


def check_cells(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """The cells are exactly 1..nb_classes."""
    present = np.unique(captures.cell_id)
    expected = np.arange(1, settings.nb_classes + 1)
    missing = np.setdiff1d(expected, present)
    unexpected = np.setdiff1d(present, expected)
    if len(missing) == 0 and len(unexpected) == 0:
        return passed("cells", f"Every cell from 1 to {settings.nb_classes} is present, and no other.")
    parts = []
    if len(missing):
        parts.append(f"missing {plural(len(missing), 'cell')}: {list_values(missing)}")
    if len(unexpected):
        parts.append(f"unexpected {plural(len(unexpected), 'cell')}: {list_values(unexpected)}")
    return failed(
        name="cells",
        message=f"cell_id must take every value from 1 to {settings.nb_classes} and no other; {'; '.join(parts)}.",
        count=len(missing) + len(unexpected),
        examples=(
            [f"cell {c} is missing" for c in missing] + [f"cell {c} is not a cell of the grid" for c in unexpected]
        )[:MAX_EXAMPLES],
    )


def check_repetitions(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """Each cell has between mean - deviation and mean + deviation captures (distinct reps)."""
    low = settings.mean_nb_rep_per_class - settings.deviation_nb_rep_per_class
    high = settings.mean_nb_rep_per_class + settings.deviation_nb_rep_per_class
    cells, _, counts = captures_per_cell(captures)
    bad = np.flatnonzero((counts < low) | (counts > high))
    if len(bad) == 0:
        return passed("repetitions", f"Every cell has between {low} and {high} repetitions.")
    return failed(
        name="repetitions",
        message=(
            f"{plural(len(bad), 'cell')} {have(len(bad))} a number of repetitions (distinct rep values) outside "
            f"{low}..{high}: cells {list_values(cells[bad])}."
        ),
        count=len(bad),
        examples=[f"cell {cells[i]}: {plural(int(counts[i]), 'repetition')}" for i in bad[:MAX_EXAMPLES]],
    )


def check_capture_length(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """Every capture has more than rows_per_capture rows."""
    minimum = settings.rows_per_capture + 1
    bad = np.flatnonzero(captures.length < minimum)
    if len(bad) == 0:
        return passed("capture_length", f"Every capture has at least {minimum} rows.")
    return failed(
        name="capture_length",
        message=(
            f"{plural(len(bad), 'capture')} {have(len(bad))} fewer than {minimum} rows (packets): record them again."
        ),
        count=len(bad),
        examples=[
            f"cell {captures.cell_id[i]}, rep {captures.rep[i]}: {plural(int(captures.length[i]), 'row')}"
            for i in bad[:MAX_EXAMPLES]
        ],
    )


def check_capture_count(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """Every cell can give its share of the stratified test set and keep a training capture."""
    cells, _, counts = captures_per_cell(captures)
    nb_test = settings.nb_traces_to_classify
    base, remainder = quota_per_cell(nb_test, settings.nb_classes)
    needed_total = nb_test + settings.nb_classes
    few = np.flatnonzero(counts < base + 1)
    nb_spare = int(np.count_nonzero(counts >= base + 2))
    total = len(captures)
    if len(few) == 0 and nb_spare >= remainder and total >= needed_total:
        return passed("capture_count", f"{total} captures: enough for {nb_test} test captures.")
    parts, examples = [], []
    if total < needed_total:
        parts.append(
            f"there are {total} captures, {needed_total} are needed ({nb_test} to test plus one per cell to train on)"
        )
        examples.append(f"{total} captures in total, {needed_total} needed")
    if len(few):
        parts.append(
            f"{plural(len(few), 'cell')} {have(len(few))} fewer than {plural(base + 1, 'capture')} "
            f"({base} for the test set and one to train on): {list_values(cells[few])}"
        )
        examples += [f"cell {cells[i]}: {plural(int(counts[i]), 'capture')}" for i in few[:MAX_EXAMPLES]]
    if nb_spare < remainder:
        parts.append(
            f"{plural(remainder, 'cell')} must give one more test capture and keep one to train on "
            f"({base + 2} captures), but only {nb_spare} {have(nb_spare)} that many"
        )
    return failed(
        name="capture_count",
        message="Not enough captures to build a test set and keep a training capture per cell: "
        + "; ".join(parts)
        + ".",
        count=max(len(few), 1),
        examples=examples,
    )


def check_captures(captures: Captures, settings: DefenceSettings) -> list[CheckResult]:
    """Checks on whole captures: cells, repetitions, capture length and count."""
    return [
        check_cells(captures, settings),
        check_repetitions(captures, settings),
        check_capture_length(captures, settings),
        check_capture_count(captures, settings),
    ]
