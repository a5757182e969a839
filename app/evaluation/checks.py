"""The vocabulary every check speaks: results, plurals, examples, and the column check of any CSV upload."""

from collections import Counter
from collections.abc import Iterable, Sequence

from .errors import CheckResult

MAX_EXAMPLES = 5
# A header may carry this many fields beyond the expected columns (an index column, a few extras) and still
# get the column check's full answer; more is refused at once, before the fields are even parsed.
MAX_EXTRA_HEADER_FIELDS = 100


def plural(count: int, word: str, words: str | None = None) -> str:
    """'1 row', '2 rows' ('words' for irregular plurals)."""
    return f"{count} {word}" if count == 1 else f"{count} {words or word + 's'}"


def have(count: int) -> str:
    """Verb agreeing with a count."""
    return "has" if count == 1 else "have"


def list_values(values: Iterable, limit: int = 10) -> str:
    """'1, 2, 3 and 4 more': the first values of a list, and how many are left out."""
    values = [str(value) for value in values]
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def passed(name: str, message: str) -> CheckResult:
    """A passed check."""
    return CheckResult(name=name, passed=True, message=message)


def failed(name: str, message: str, count: int, examples: Sequence[str] = ()) -> CheckResult:
    """A failed check with its count of problems and at most MAX_EXAMPLES examples."""
    return CheckResult(name=name, passed=False, message=message, count=count, examples=list(examples)[:MAX_EXAMPLES])


def not_run(name: str, reason: str) -> CheckResult:
    """A check that could not run because an earlier one failed: listed as failed, so the list is complete."""
    return CheckResult(name=name, passed=False, message=f"Not checked: {reason}")


def all_passed(checks: Iterable[CheckResult]) -> bool:
    """Whether every check passed."""
    return all(check.passed for check in checks)


def failure_message(checks: Sequence[CheckResult], what: str) -> str:
    """One sentence naming the failed checks, for the top of the page ('what' is 'defence' or 'attack file')."""
    names = [check.name for check in checks if not check.passed]
    return (
        f"The {what} failed {plural(len(names), 'check')} ({', '.join(names)}): "
        "fix the problems listed and upload it again."
    )


def check_columns(header: Sequence[str], expected: Sequence[str], described: str | None = None) -> CheckResult:
    """The header must name exactly the expected columns, each once, in any order (linear in the header).

    `described` names the expected columns in the message when listing them all would be too long.
    """
    counts = Counter(header)
    wanted = set(expected)
    missing = [name for name in expected if name not in counts]
    unexpected = [name for name in counts if name not in wanted]
    repeated = [name for name, count in counts.items() if count > 1]
    described = described or ", ".join(expected)
    if not (missing or unexpected or repeated):
        return passed("columns", f"The columns are {described}.")
    parts = []
    if missing:
        parts.append(f"missing {plural(len(missing), 'column')}: {list_values(map(repr, missing), MAX_EXAMPLES)}")
    if unexpected:
        hint = " (an unnamed column is usually a DataFrame index: write with index=False)" if "" in counts else ""
        listed = list_values(map(repr, unexpected), MAX_EXAMPLES)
        parts.append(f"unexpected {plural(len(unexpected), 'column')}: {listed}{hint}")
    if repeated:
        parts.append(f"repeated {plural(len(repeated), 'column')}: {list_values(map(repr, repeated), MAX_EXAMPLES)}")
    return failed(
        "columns",
        f"The first line must name exactly the columns {described} (any order): {'; '.join(parts)}.",
        len(missing) + len(unexpected) + len(repeated),
        [f"missing column {name!r}" for name in missing[:MAX_EXAMPLES]]
        + [f"unexpected column {name!r}" for name in unexpected[:MAX_EXAMPLES]]
        + [f"repeated column {name!r}" for name in repeated[:MAX_EXAMPLES]],
    )
