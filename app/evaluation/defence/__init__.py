"""Defence evaluation: read an uploaded trace, check it, measure its utility, split and write the sets.

Row numbers in messages are *line numbers of the CSV file*, the header being line 1.
When the columns or the value types are wrong, the checks that need typed values are still listed,
as failed with a message that they could not run, so a student sees the whole list every time.
"""

from .captures import Captures, group_captures
from .checks import (
    CHECK_NAMES,
    MAX_PACKET_SIZE,
    check_capture_count,
    check_capture_length,
    check_captures,
    check_cells,
    check_repetitions,
    check_sizes,
    check_timestamps,
)
from .pipeline import DefenceResult, evaluate_defence
from .plausibility import check_plausibility
from .reading import read_defence
from .reference import (
    CellMedians,
    Overheads,
    cell_medians,
    compute_overheads,
    compute_reference,
    figures_per_cell,
)
from .relabel import AttackerSets, relabel_test_pool
from .settings import FLOAT_COLUMNS, INTEGER_COLUMNS, DefenceSettings
from .split import TEST_ID_RANGE, TRAIN_REP_RANGE, DefenceSplit, quota_per_cell, split_defence
from .traces import DefenceTraces
from .utility import capture_metrics, compute_utility, utility_from_metrics
from .writing import write_defence_sets

__all__ = [
    "Captures",
    "CellMedians",
    "Overheads",
    "cell_medians",
    "check_plausibility",
    "compute_overheads",
    "figures_per_cell",
    "compute_reference",
    "quota_per_cell",
    "utility_from_metrics",
    "DefenceResult",
    "AttackerSets",
    "relabel_test_pool",
    "DefenceSettings",
    "DefenceSplit",
    "DefenceTraces",
    "check_capture_count",
    "check_capture_length",
    "check_captures",
    "check_cells",
    "check_repetitions",
    "check_sizes",
    "check_timestamps",
    "compute_utility",
    "capture_metrics",
    "evaluate_defence",
    "group_captures",
    "read_defence",
    "split_defence",
    "write_defence_sets",
    # Constants of the competition, importable from here as they were before the module became a package.
    "CHECK_NAMES",
    "FLOAT_COLUMNS",
    "INTEGER_COLUMNS",
    "MAX_PACKET_SIZE",
    "TEST_ID_RANGE",
    "TRAIN_REP_RANGE",
]
