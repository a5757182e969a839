"""The `plausibility` check: a defence must still carry the pages it claims to load.

Without it, unit games beat the utility score: sizes written in kB, or a few crafted 1-byte packets per
capture, pass every other check and multiply the score. A defence may add padding, delay or dummy packets;
it cannot make the pages smaller or faster than undefended traffic by much.
"""

from __future__ import annotations

import numpy as np

from ..checks import MAX_EXAMPLES, failed, passed, plural
from ..errors import CheckResult
from .reference import CellMedians, ratios
from .settings import DefenceSettings
from .traces import DefenceTraces

# A median ratio this close to 1/1000 says the unit is off by a thousand, not that bytes are missing (sizes
# in kB rounded to whole numbers inflate small packets, hence the wide window).
_THOUSANDTH = (1 / 3000, 1 / 200)


def _percent(value: float) -> str:
    return f"{value * 100:.3g} %"


def _shortfall(what: str, ratio: np.ndarray, cells: np.ndarray, minimum: float) -> tuple[str, list[str], float] | None:
    """(problem, examples, median ratio) when `ratio` is below `minimum` in more than half of the cells."""
    low = np.flatnonzero(ratio < minimum)  # NaN (reference median 0) never counts as low
    if len(low) * 2 <= len(cells):
        return None
    median = float(np.nanmedian(ratio))
    worst = low[np.argsort(ratio[low], kind="stable")][:MAX_EXAMPLES]
    verb = "is" if what == "duration" else "are"
    problem = (
        f"{what} {verb} below {_percent(minimum)} of undefended traffic in {len(low)} of "
        f"{plural(len(cells), 'cell')} (median over cells: {_percent(median)} of the reference)"
    )
    examples = [f"cell {cells[i]}: {what} {_percent(ratio[i])} of the reference" for i in worst]
    return problem, examples, median


def _cause(what: str, median: float) -> str:
    if what.startswith("bytes"):
        if _THOUSANDTH[0] <= median <= _THOUSANDTH[1]:
            return "sizes look like kB: multiply by 1000 (direction_size is the IP packet's length in bytes)"
        return "bytes are missing: a defence may add padding or dummy packets, not drop what the pages need"
    if _THOUSANDTH[0] <= median <= _THOUSANDTH[1]:
        return "durations look 1000 times too short: timestamps must be seconds, not thousands of seconds"
    return "captures are too short: timestamps must be seconds since the capture's first packet"


def check_plausibility(
    traces: DefenceTraces, defence: CellMedians, reference: CellMedians, settings: DefenceSettings
) -> CheckResult:
    """Fail when a defence carries much less than undefended traffic, or is made of implausibly small packets.

    Fails, with the measured figures, up to five cells concerned and the likely cause, when
    - its median bytes received or bytes sent per cell are below `plausible_min_bytes_ratio` of the
      reference's in more than half of the cells both have,
    - or its median durations are below `plausible_min_time_ratio` of the reference's in more than half,
    - or more than 1 % of its packets are smaller than `min_packet_bytes` (an IPv4 + TCP header alone is 40).

    Raises:
        ValueError: the defence and the reference have no cell in common.
    """
    cells, ratio = ratios(defence, reference)
    problems, examples, causes = [], [], []
    for metric, what, minimum in (
        ("bytes_in", "bytes received", settings.plausible_min_bytes_ratio),
        ("bytes_out", "bytes sent", settings.plausible_min_bytes_ratio),
        ("duration", "duration", settings.plausible_min_time_ratio),
    ):
        found = _shortfall(what, ratio[metric], cells, minimum)
        if found:
            problems.append(found[0])
            examples += found[1]
            causes.append(_cause(what, found[2]))
    size = traces.direction_size
    small = size < settings.min_packet_bytes  # two boolean passes: no full-size copy of the sizes
    small &= size > -settings.min_packet_bytes
    nb_small = int(np.count_nonzero(small))
    if nb_small * 100 > len(traces):
        per_cell = np.bincount(traces.cell_id[small] - traces.cell_id.min(), minlength=1)
        top = np.argsort(-per_cell, kind="stable")[:MAX_EXAMPLES]
        problems.append(
            f"{_percent(nb_small / len(traces))} of the packets ({nb_small:,}) are smaller than "
            f"{settings.min_packet_bytes} bytes (at most 1 % may be)"
        )
        lowest_cell = int(traces.cell_id.min())
        examples += [
            f"cell {i + lowest_cell}: {plural(int(per_cell[i]), 'packet')} under {settings.min_packet_bytes} bytes"
            for i in top
            if per_cell[i]
        ]
        causes.append("an IPv4 + TCP header alone is 40 bytes: sizes must be whole IP packets in bytes")
    if not problems:
        return passed(
            "plausibility",
            f"Bytes and durations are in line with undefended traffic over {plural(len(cells), 'cell')}, "
            f"and packets are at least {settings.min_packet_bytes} bytes.",
        )
    unique_causes = list(dict.fromkeys(causes))
    return failed(
        "plausibility",
        "The defence does not look like it still carries the pages: "
        + "; ".join(problems)
        + ". Likely cause: "
        + "; ".join(unique_causes)
        + ".",
        len(problems),
        examples,
    )
