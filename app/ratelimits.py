"""Login limits shared by the login page and the API's token endpoint: one budget per account and per address."""

from __future__ import annotations

from flask import current_app, request

from app.extensions import limiter


def login_account_key() -> str:
    """The account a login attempt names, from the form or from HTTP Basic, trimmed and case-folded."""
    username = request.form.get("username")
    if username is None and request.authorization is not None:
        username = request.authorization.parameters.get("username")
    return "login-account:" + (username or "").strip().casefold()


per_account = limiter.shared_limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    scope="login-account",
    key_func=login_account_key,
    methods=["POST"],
)
per_address = limiter.shared_limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], scope="login-address", methods=["POST"]
)
