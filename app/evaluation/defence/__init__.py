"""Defence evaluation: read an uploaded trace, check it, measure its utility, split and write the sets.

Row numbers in messages are *line numbers of the CSV file*, the header being line 1.
When the columns or the value types are wrong, the checks that need typed values are still listed,
as failed with a message that they could not run, so a student sees the whole list every time.
"""

from app.evaluation.defence.captures import Captures, group_captures
from app.evaluation.defence.checks import (
    CHECK_NAMES,
    MAX_EXAMPLES,
    MAX_PACKET_SIZE,
    check_capture_count,
    check_capture_length,
    check_captures,
    check_cells,
    check_columns,
    check_defence,
    check_repetitions,
    check_sizes,
    failure_message,
)
from app.evaluation.defence.pipeline import DefenceResult, evaluate_defence
from app.evaluation.defence.reading import read_defence
from app.evaluation.defence.settings import FLOAT_COLUMNS, INTEGER_COLUMNS, DefenceSettings
from app.evaluation.defence.split import TEST_ID_RANGE, TRAIN_REP_RANGE, DefenceSplit, split_defence
from app.evaluation.defence.traces import DefenceTraces
from app.evaluation.defence.utility import capture_metrics, compute_utility
from app.evaluation.defence.writing import write_defence_sets

__all__ = [
    "Captures",
    "DefenceResult",
    "DefenceSettings",
    "DefenceSplit",
    "DefenceTraces",
    "check_capture_count",
    "check_capture_length",
    "check_captures",
    "check_cells",
    "check_columns",
    "check_defence",
    "check_repetitions",
    "check_sizes",
    "compute_utility",
    "capture_metrics",
    "evaluate_defence",
    "failure_message",
    "group_captures",
    "read_defence",
    "split_defence",
    "write_defence_sets",
    # Constants of the competition, importable from here as they were before the module became a package.
    "CHECK_NAMES",
    "FLOAT_COLUMNS",
    "INTEGER_COLUMNS",
    "MAX_EXAMPLES",
    "MAX_PACKET_SIZE",
    "TEST_ID_RANGE",
    "TRAIN_REP_RANGE",
]
