"""Utility of a defence: bytes received, bytes sent and duration of its captures, and the score."""

import math

import numpy as np

from ..errors import CheckResult, ValidationError
from .captures import Captures, group_captures
from .traces import DefenceTraces


def capture_metrics(traces: DefenceTraces, captures: Captures) -> dict[str, np.ndarray]:
    """Bytes received, bytes sent and duration of every capture (canonical order)."""
    if len(captures) == 0:
        empty = np.zeros(0)
        return {"bytes_in": empty, "bytes_out": empty, "duration": empty}
    # reduceat needs increasing offsets: use the row layout, then reorder to canonical order.
    layout = np.argsort(captures.start)
    start = captures.start[layout]
    size = traces.direction_size
    sent = np.add.reduceat(np.maximum(size, 0), start)
    total = np.add.reduceat(np.abs(size), start)  # one full-size temporary at a time
    inverse = np.empty_like(layout)
    inverse[layout] = np.arange(len(layout))
    sent = sent[inverse]
    received = total[inverse] - sent
    last = captures.start + captures.length - 1
    # Rows are in time order inside a capture, so last - first is max - min.
    duration = traces.timestamp[last] - traces.timestamp[captures.start]
    return {"bytes_in": received.astype(np.float64), "bytes_out": sent.astype(np.float64), "duration": duration}


def compute_utility(traces: DefenceTraces, captures: Captures | None = None) -> tuple[dict, float]:
    """Max, mean and median of each metric, and the utility score 64 / log10(|product of medians|)."""
    if captures is None:
        traces, captures = group_captures(traces)
    return utility_from_metrics(capture_metrics(traces, captures))


def utility_from_metrics(metrics: dict[str, np.ndarray]) -> tuple[dict, float]:
    """compute_utility from capture metrics already measured (capture_metrics' output).

    Raises:
        ValidationError: no capture, or a product of medians of at most 1 (the score is then undefined).
    """
    if len(metrics["duration"]) == 0:
        raise ValidationError(
            "The defence holds no capture.", [CheckResult("utility", False, "No capture to measure.")]
        )
    utility = {
        name: {
            "max": float(np.max(values)),
            "mean": float(np.mean(values)),
            "median": float(np.median(values)),
        }
        for name, values in metrics.items()
    }
    product = abs(utility["bytes_in"]["median"] * utility["bytes_out"]["median"] * utility["duration"]["median"])
    if not product > 1 or not math.isfinite(product):
        check = CheckResult(
            name="utility",
            passed=False,
            message=(
                "The utility score is undefined: the product of the median bytes received "
                f"({utility['bytes_in']['median']:g}), median bytes sent ({utility['bytes_out']['median']:g}) "
                f"and median duration ({utility['duration']['median']:g} s) must be greater than 1. "
                "Check that sizes are in bytes and timestamps in seconds."
            ),
            count=1,
        )
        raise ValidationError(check.message, [check])
    return utility, 64 / math.log10(product)
