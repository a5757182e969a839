"""The whole path of a defence: read, check, measure, split and write; and what is recorded of it."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.evaluation.defence.captures import group_captures
from app.evaluation.defence.checks import CHECK_NAMES, _not_run, _passed, check_captures, check_sizes, failure_message
from app.evaluation.defence.reading import read_defence
from app.evaluation.defence.settings import DefenceSettings
from app.evaluation.defence.split import split_defence
from app.evaluation.defence.utility import compute_utility
from app.evaluation.defence.writing import write_defence_sets
from app.evaluation.errors import CheckResult, ValidationError


@dataclass
class DefenceResult:
    """Everything the platform records about an accepted defence."""

    checks: list[CheckResult]
    utility: dict
    utility_score: float
    nb_rows: int
    nb_captures: int
    seed: int
    train_path: Path
    test_path: Path
    verification_path: Path
    nb_train_captures: int
    nb_test_captures: int

    def to_dict(self) -> dict:
        """JSON-serialisable summary, without the file paths."""
        return {
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
) -> DefenceResult:
    """Read, check, measure, split and write a defence; raise ValidationError with every check on failure."""
    report = progress or (lambda stage: None)
    report("reading")
    traces, checks = read_defence(Path(zip_path), settings)
    report("checking")
    if traces is None:
        checks += [_not_run(name, "the file must be readable first (see above).") for name in CHECK_NAMES[2:]]
        raise ValidationError(failure_message(checks), checks)
    checks.append(check_sizes(traces))  # before grouping, which may move rows: line numbers stay right
    traces, captures = group_captures(traces)
    checks += check_captures(captures, settings)
    if not all(check.passed for check in checks):
        raise ValidationError(failure_message(checks), checks)
    report("measuring")
    try:
        utility, score = compute_utility(traces, captures)
    except ValidationError as exc:
        raise ValidationError(exc.message, checks + exc.checks) from None
    checks.append(_passed("utility", f"Utility score {score:.3f}."))
    report("splitting")
    split = split_defence(captures, settings, seed)
    report("writing")
    train_path, test_path, verification_path = write_defence_sets(traces, captures, split, Path(out_dir), team_id)
    return DefenceResult(
        checks=checks,
        utility=utility,
        utility_score=score,
        nb_rows=len(traces),
        nb_captures=len(captures),
        seed=seed,
        train_path=train_path,
        test_path=test_path,
        verification_path=verification_path,
        nb_train_captures=len(split.train),
        nb_test_captures=len(split.test),
    )
