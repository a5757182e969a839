"""Integers a user sends, checked: in a URL path (the `int` converter) and in a query string (query_int).

A database integer holds at most 2**63 − 1: a larger number in a path could name nothing and overflowed the
database driver (a 500). Path numbers beyond it are not found (404); query numbers that are not whole numbers,
or out of their range, are refused with a 400 that names the parameter and what it accepts.
"""

from __future__ import annotations

from flask import abort, request
from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1


class BoundedIntegerConverter(IntegerConverter):
    """Werkzeug's `int` converter, capped at MAX_ID: a larger number does not match the route (404)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def query_int(name: str, default: int | None = None, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """The query parameter `name` as an int in [minimum, maximum]; default when absent; 400 otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if len(request.args.getlist(name)) > 1:
        abort(400, f"Send {name} once.")
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not raw.strip().lstrip("+-").isdigit() or not minimum <= value <= maximum:
        abort(400, f"{name} must be a whole number from {minimum} to {maximum}, not {raw[:40]!r}.")
    return value
