"""Failures shown to the user as one sentence (kept apart from api.py so that offline commands skip requests)."""

from __future__ import annotations


class ClientError(Exception):
    """A failure to show the user as one sentence (exit code 1)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class ApiError(ClientError):
    """The server answered with an error: its status, short code and message."""
