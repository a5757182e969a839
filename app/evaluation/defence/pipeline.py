"""The whole path of a defence: read, check, measure, split and write; and what is recorded of it."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..checks import all_passed, failure_message, not_run, passed
from ..errors import CheckResult, ValidationError
from .captures import group_captures
from .checks import CHECK_NAMES, check_captures, check_sizes
from .plausibility import check_plausibility
from .reading import read_defence
from .reference import CellMedians, Overheads, compute_overheads, figures_per_cell, medians_from_metrics
from .settings import DefenceSettings
from .split import split_defence
from .utility import capture_metrics, utility_from_metrics
from .writing import write_defence_sets


@dataclass
class DefenceResult:
    """Everything the platform records about an accepted defence."""

    checks: list[CheckResult]
    utility: dict
    utility_score: float
    nb_rows: int
    nb_captures: int
    seed: int
    train_path: Path | None  # the paths are None when evaluated with write_sets=False
    test_path: Path | None
    verification_path: Path | None
    nb_train_captures: int
    nb_test_captures: int
    overheads: Overheads | None = None  # None when evaluated without a reference
    cell_medians: CellMedians | None = None  # the defence's own per-cell medians (set with a reference)

    def to_dict(self) -> dict:
        """JSON-serialisable summary, without the file paths (and without the cell medians)."""
        return {
            "overheads": self.overheads.to_dict() if self.overheads is not None else None,
            "checks": [check.to_dict() for check in self.checks],
            "utility": self.utility,
            "utility_score": self.utility_score,
            "nb_rows": self.nb_rows,
            "nb_captures": self.nb_captures,
            "seed": self.seed,
            "nb_train_captures": self.nb_train_captures,
            "nb_test_captures": self.nb_test_captures,
        }


def evaluate_defence(
    zip_path: Path,
    out_dir: Path,
    *,
    team_id: int,
    settings: DefenceSettings,
    seed: int,
    progress: Callable[[str], None] | None = None,
    reference: CellMedians | None = None,
    write_sets: bool = True,
    accepted: Callable[[DefenceResult], None] | None = None,
) -> DefenceResult:
    """Read, check, measure, split and write a defence; raise ValidationError with every check on failure.

    With a `reference` (per-cell medians of undefended traffic, see compute_reference), the `plausibility`
    check runs before the utility and the result carries the overheads against it; without one, neither.
    When that check fails, the ValidationError's `figures["plausibility_figures"]` holds figures_per_cell.
    With write_sets=False (`srs validate`), the sets are split but not written: nothing lands in out_dir.
    `accepted(result)` is called once every check has passed and every figure is final, before the sets are
    written (the result's paths are None then): the worker shows the figures while it writes.
    """
    report = progress or (lambda stage: None)
    report("reading")
    traces, checks = read_defence(Path(zip_path), settings)
    report("checking")
    if traces is None:
        checks += [not_run(name, "the file must be readable first (see above).") for name in CHECK_NAMES[2:]]
        raise ValidationError(failure_message(checks, "defence"), checks)
    checks.append(check_sizes(traces))  # before grouping, which may move rows: line numbers stay right
    traces, captures = group_captures(traces)
    checks += check_captures(captures, settings)
    if not all_passed(checks):
        raise ValidationError(failure_message(checks, "defence"), checks)
    report("measuring")
    metrics = capture_metrics(traces, captures)
    overheads = medians = None
    if reference is not None:
        medians = medians_from_metrics(captures, metrics)
        checks.append(check_plausibility(traces, medians, reference, settings))
        if not checks[-1].passed:
            figures = {"plausibility_figures": figures_per_cell(medians, reference)}
            raise ValidationError(failure_message(checks, "defence"), checks, figures)
        overheads = compute_overheads(medians, reference)
    try:
        utility, score = utility_from_metrics(metrics)
    except ValidationError as exc:
        raise ValidationError(exc.message, checks + exc.checks) from None
    del metrics
    checks.append(passed("utility", f"Utility score {score:.3f}."))
    report("splitting")
    split = split_defence(captures, settings, seed)
    result = DefenceResult(
        checks=checks,
        utility=utility,
        utility_score=score,
        nb_rows=len(traces),
        nb_captures=len(captures),
        seed=seed,
        train_path=None,
        test_path=None,
        verification_path=None,
        nb_train_captures=len(split.train),
        nb_test_captures=len(split.test),
        overheads=overheads,
        cell_medians=medians,
    )
    if accepted is not None:
        accepted(result)
    if write_sets:
        report("writing")
        packets = traces.direction_size, traces.timestamp
        del traces  # the per-row cell and rep columns are not written (the captures carry them): 16 bytes a row
        result.train_path, result.test_path, result.verification_path = write_defence_sets(
            *packets, captures, split, Path(out_dir), team_id
        )
    return result
