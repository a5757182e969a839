"""Budgets of POSTs (`budget`): the login limits shared by the login page and the API's token endpoint (one budget
of failed attempts per account and one per address), and the key of limits per e-mail address typed in a form."""

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


def form_email_key(scope: str):
    """A key function: the e-mail address typed in the form, trimmed and lower-cased, under scope."""

    def key() -> str:
        return f"{scope}:" + (request.form.get("email") or "").strip().lower()[:120]

    return key


def failed(response) -> bool:
    """Whether a login attempt failed: only failures spend a budget, so a lecture hall behind one address (a
    campus NAT) logging in at once is let through, while guessing is still slowed down. A login that succeeds
    answers a redirect (the page, 302) or a new token (the API, 201); a failed one re-shows the form (200) or
    answers 401."""
    return response.status_code not in (201, 302)


def budget(setting: str, scope: str, *, key_func=None, deduct_when=None):
    """A limit on POSTs shared by every view it decorates: config[setting] (e.g. "3 per hour") under scope, per
    client address unless key_func says otherwise; deduct_when(response) picks the answers that spend it (all by
    default)."""
    return limiter.shared_limit(
        lambda: current_app.config[setting],
        scope=scope,
        key_func=key_func,
        methods=["POST"],
        deduct_when=deduct_when,
    )


per_account = budget("LOGIN_LIMIT_PER_ACCOUNT", "login-account", key_func=login_account_key, deduct_when=failed)
per_address = budget("LOGIN_LIMIT_PER_ADDRESS", "login-address", deduct_when=failed)
