"""Bearer tokens: issued for HTTP Basic credentials, required by every other call."""

from __future__ import annotations

from functools import wraps

from flask import abort, g, jsonify, request
from flask_login import current_user

from app import ratelimits
from app.models import User
from app.routes.api import bp
from app.services import accounts


def token_required(view):
    """401 without a valid, unexpired bearer token; sets g.api_user and g.api_token.

    Reads (GET) also accept the site's login session, so that pages can poll the API; changes never do,
    which keeps CSRF out of the API.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if not header and request.method in ("GET", "HEAD") and current_user.is_authenticated:
            g.api_user, g.api_token = current_user._get_current_object(), None
            return view(*args, **kwargs)
        scheme, _, token = header.partition(" ")
        row = accounts.token_row(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if row is None:
            abort(401, "Send a valid token: Authorization: Bearer <token> (get one with POST /api/v1/tokens).")
        g.api_user, g.api_token = row.user, row
        return view(*args, **kwargs)

    return wrapped


def admin_token_required(view):
    @wraps(view)
    @token_required
    def wrapped(*args, **kwargs):
        if not g.api_user.is_admin:
            abort(403, "This call is for the course staff.")
        return view(*args, **kwargs)

    return wrapped


def api_user() -> User:
    return g.api_user


@bp.post("/tokens")
@ratelimits.per_account
@ratelimits.per_address
def create_token():
    """Exchange HTTP Basic username:password for a bearer token."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        abort(401, "Send your username and password with HTTP Basic authentication.")
    user = accounts.authenticate(auth.parameters.get("username") or "", auth.parameters.get("password") or "")
    if user is None:
        abort(401, "Invalid username or password.")
    row, token = accounts.issue_token(user)
    return jsonify(token=token, expires_at=row.expires_at.isoformat() + "Z"), 201


@bp.delete("/tokens")
@token_required
def revoke_token():
    """Revoke the token used for this call."""
    accounts.revoke_token(g.api_token)
    return "", 204
