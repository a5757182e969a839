"""What can go wrong in the competition, in its own words: each kind carries the HTTP status, a short machine
code and a message for the user. app/errors.py answers them all (JSON under /api, the error page elsewhere).

A leaf module: it imports nothing from the app, so any service may raise these.
"""

from __future__ import annotations


class CompetitionError(Exception):
    """Something a user asked that the competition cannot do; `message` says why and what to do instead."""

    status = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds after which the same request may succeed

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class Invalid(CompetitionError):
    """The request itself is wrong (a missing field, a malformed value)."""

    status, code = 400, "bad_request"


class NotFound(CompetitionError):
    status, code = 404, "not_found"


class Conflict(CompetitionError):
    """Not possible in the competition's current state (already done, still running, not ready)."""

    status, code = 409, "conflict"


class Refused(CompetitionError):
    """A file that failed its checks."""

    status, code = 422, "invalid_file"


class Unavailable(CompetitionError):
    """Not the user's fault: something the staff must fix, or that passes; try again later."""

    status, code = 503, "unavailable"


class UploadRefused(CompetitionError):
    """An upload refused before queueing, with the status and code the upload answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, status=status, code=code)

    @property
    def closes_page(self) -> bool:
        """Whether the refusal concerns the whole page (phase closed, no team), not the file sent."""
        return self.code in ("phase_closed", "no_team")


class QuotaExceeded(UploadRefused):
    """The team used its uploads for now; `retry_after` says in how many seconds the next one is allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(429, "quota", message)
        self.retry_after = retry_after
