"""Access checks shared by the staff blueprints."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def staff_required(view):
    """Anonymous users go to the login page; students get 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, "This page is for the course staff.")
        return view(*args, **kwargs)

    return wrapped
