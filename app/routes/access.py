"""The staff-only check, as a view decorator and as a blueprint's before_request."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from app.extensions import login


def staff_only():
    """None for the staff; anonymous users go to the login page; students get 403."""
    if not current_user.is_authenticated:
        return login.unauthorized()
    if not current_user.is_admin:
        abort(403, "This page is for the course staff.")
    return None


def staff_required(view):
    """Decorate a view so that only the staff reach it (see staff_only)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        return staff_only() or view(*args, **kwargs)

    return wrapped
