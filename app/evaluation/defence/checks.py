"""Checks a student can act on: the columns, the types, the sizes and the captures, with their messages.

Row numbers in messages are *line numbers of the CSV file*, the header being line 1.
"""

import math

import numpy as np

from app.evaluation.defence.captures import Captures, _captures_per_cell, group_captures
from app.evaluation.defence.settings import DefenceSettings
from app.evaluation.defence.traces import DefenceTraces
from app.evaluation.errors import CheckResult

MAX_EXAMPLES = 5
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _have(count: int) -> str:
    return "has" if count == 1 else "have"


def _list_values(values, limit: int = 10) -> str:
    values = [str(v) for v in values]
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _passed(name: str, message: str) -> CheckResult:
    return CheckResult(name=name, passed=True, message=message)


def _not_run(name: str, reason: str) -> CheckResult:
    return CheckResult(name=name, passed=False, message=f"Not checked: {reason}")


def failure_message(checks: list[CheckResult]) -> str:
    """One sentence summarising failed checks, for the top of the page."""
    failed = [check.name for check in checks if not check.passed]
    return (
        f"The defence failed {_plural(len(failed), 'check')} ({', '.join(failed)}): "
        "fix the problems listed and upload it again."
    )


def check_columns(header: list[str], settings: DefenceSettings) -> CheckResult:
    """The header must name exactly the expected columns, in any order."""
    expected = list(settings.columns)
    missing = [name for name in expected if name not in header]
    unexpected = [name for name in header if name not in expected]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if not (missing or unexpected or duplicated):
        return _passed("columns", f"The columns are {', '.join(expected)}.")
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing))}")
    if unexpected:
        parts.append(f"unexpected {', '.join(map(repr, unexpected))}")
    if duplicated:
        parts.append(f"repeated {', '.join(map(repr, duplicated))}")
    return CheckResult(
        name="columns",
        passed=False,
        message=(
            f"The first line must name exactly the columns {', '.join(expected)} (any order): {'; '.join(parts)}."
        ),
        count=len(missing) + len(unexpected) + len(duplicated),
        examples=(
            [f"missing column {n!r}" for n in missing]
            + [f"unexpected column {n!r}" for n in unexpected]
            + [f"repeated column {n!r}" for n in duplicated]
        )[:MAX_EXAMPLES],
    )


def _check_timestamps(traces: DefenceTraces) -> CheckResult:
    timestamp = traces.timestamp
    bad = np.flatnonzero(~(timestamp >= 0) | ~np.isfinite(timestamp))
    if len(bad) == 0:
        return _passed(
            "types",
            "cell_id, rep and direction_size are whole numbers and timestamp a finite number >= 0.",
        )
    examples = []
    for row in bad[:MAX_EXAMPLES]:
        value = float(timestamp[row])
        why = "is negative" if value < 0 and math.isfinite(value) else "is not a finite number"
        examples.append(f"line {traces.line(row)}: timestamp = {value!r} {why}")
    return CheckResult(
        name="types",
        passed=False,
        message=(
            f"{_plural(len(bad), 'row')} {_have(len(bad))} a timestamp that is negative or not a finite number: "
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
        return _passed("sizes", f"Every direction_size is non-zero and at most {MAX_PACKET_SIZE} in absolute value.")
    return CheckResult(
        name="sizes",
        passed=False,
        message=(
            f"{_plural(len(bad), 'row')} {_have(len(bad))} a direction_size of 0 or beyond ±{MAX_PACKET_SIZE}: "
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
        return _passed("cells", f"Every cell from 1 to {settings.nb_classes} is present, and no other.")
    parts = []
    if len(missing):
        parts.append(f"missing {_plural(len(missing), 'cell')}: {_list_values(missing)}")
    if len(unexpected):
        parts.append(f"unexpected {_plural(len(unexpected), 'cell')}: {_list_values(unexpected)}")
    return CheckResult(
        name="cells",
        passed=False,
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
    cells, _, counts = _captures_per_cell(captures)
    bad = np.flatnonzero((counts < low) | (counts > high))
    if len(bad) == 0:
        return _passed("repetitions", f"Every cell has between {low} and {high} repetitions.")
    return CheckResult(
        name="repetitions",
        passed=False,
        message=(
            f"{_plural(len(bad), 'cell')} {_have(len(bad))} a number of repetitions (distinct rep values) outside "
            f"{low}..{high}: cells {_list_values(cells[bad])}."
        ),
        count=len(bad),
        examples=[f"cell {cells[i]}: {_plural(int(counts[i]), 'repetition')}" for i in bad[:MAX_EXAMPLES]],
    )


def check_capture_length(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """Every capture has more than rows_per_capture rows."""
    minimum = settings.rows_per_capture + 1
    bad = np.flatnonzero(captures.length < minimum)
    if len(bad) == 0:
        return _passed("capture_length", f"Every capture has at least {minimum} rows.")
    return CheckResult(
        name="capture_length",
        passed=False,
        message=(
            f"{_plural(len(bad), 'capture')} {_have(len(bad))} fewer than {minimum} rows (packets): record them again."
        ),
        count=len(bad),
        examples=[
            f"cell {captures.cell_id[i]}, rep {captures.rep[i]}: {_plural(int(captures.length[i]), 'row')}"
            for i in bad[:MAX_EXAMPLES]
        ],
    )


def check_capture_count(captures: Captures, settings: DefenceSettings) -> CheckResult:
    """There are enough captures for the test set while leaving one training capture per cell."""
    cells, _, counts = _captures_per_cell(captures)
    needed_total = settings.nb_traces_to_classify + settings.nb_classes
    few = np.flatnonzero(counts < 2)
    total = len(captures)
    if len(few) == 0 and total >= needed_total:
        return _passed("capture_count", f"{total} captures: enough for {settings.nb_traces_to_classify} test captures.")
    parts, examples = [], []
    if total < needed_total:
        parts.append(
            f"there are {total} captures, {needed_total} are needed "
            f"({settings.nb_traces_to_classify} to test plus one per cell to train on)"
        )
        examples.append(f"{total} captures in total, {needed_total} needed")
    if len(few):
        parts.append(f"{_plural(len(few), 'cell')} {_have(len(few))} a single capture: {_list_values(cells[few])}")
        examples += [f"cell {cells[i]}: 1 capture" for i in few]
    return CheckResult(
        name="capture_count",
        passed=False,
        message="Not enough captures to build a test set and keep a training capture per cell: "
        + "; ".join(parts)
        + ".",
        count=max(len(few), 1),
        examples=examples[:MAX_EXAMPLES],
    )


def check_defence(
    traces: DefenceTraces, settings: DefenceSettings, captures: Captures | None = None
) -> list[CheckResult]:
    """Checks on typed values: sizes, cells, repetitions, capture length and count.

    Give `captures` only with traces still in file order (group_captures may move rows in place).
    """
    sizes = check_sizes(traces)
    if captures is None:
        traces, captures = group_captures(traces)
    return [sizes, *check_captures(captures, settings)]


def check_captures(captures: Captures, settings: DefenceSettings) -> list[CheckResult]:
    """Checks on whole captures: cells, repetitions, capture length and count."""
    return [
        check_cells(captures, settings),
        check_repetitions(captures, settings),
        check_capture_length(captures, settings),
        check_capture_count(captures, settings),
    ]
