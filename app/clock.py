"""The one clock of the platform: naive UTC (like every datetime stored), and a clock tests can freeze.

A leaf module: it imports nothing from the app, so models, services and tasks can all read it."""

from __future__ import annotations

from datetime import UTC, datetime

_frozen: datetime | None = None


def now() -> datetime:
    """The current time in UTC (naive, like every datetime stored), or the frozen time in tests."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None)


def freeze(moment: datetime | None) -> None:
    """Make now() answer `moment` until freeze(None) (tests only)."""
    global _frozen
    _frozen = moment
