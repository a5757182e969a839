"""Login limits shared by the login page and the API's token endpoint: one budget per account and per address."""

from __future__ import annotations

from flask import current_app, request

from app.extensions import limiter

TOKEN_ENDPOINT = "api.create_token"


def login_account_key() -> str:
    """The account a login attempt authenticates as, trimmed and case-folded.

    The token endpoint authenticates with HTTP Basic only, so its key is the Basic user and nothing else: a
    form field sent beside it (a decoy) must not pick another budget. The login page reads its form.
    """
    if request.endpoint == TOKEN_ENDPOINT:
        auth = request.authorization
        username = auth.parameters.get("username") if auth is not None and auth.type == "basic" else None
    else:
        username = request.form.get("username")
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
