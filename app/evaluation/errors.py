"""Errors raised by the evaluation code, with the checks a student can act on."""

from dataclasses import asdict, dataclass, field


@dataclass
class CheckResult:
    """Outcome of one named check on an upload."""

    name: str
    passed: bool
    message: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the check as a JSON-serialisable dict."""
        return asdict(self)


class ValidationError(Exception):
    """An upload failed its checks; `message` says what to fix, `checks` give the details.

    `figures` holds JSON-serialisable measurements behind a failure, for the staff (e.g. per-cell medians).
    """

    def __init__(self, message: str, checks: list[CheckResult] | None = None, figures: dict | None = None):
        super().__init__(message)
        self.message = message
        self.checks = list(checks) if checks is not None else []
        self.figures = dict(figures) if figures else {}
