"""Behind a reverse proxy the client's address comes from X-Forwarded-For only when TRUSTED_PROXIES says so."""

from __future__ import annotations

from flask import request

from app import create_app


def _seen_address(app, **overrides) -> str:
    site = create_app("testing", **{**app.config, **overrides})
    site.add_url_rule("/_address", "address", lambda: request.remote_addr or "")
    response = site.test_client().get(
        "/_address", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    return response.get_data(as_text=True)


def test_forwarded_address_is_used_behind_one_trusted_proxy(app):
    assert _seen_address(app, TRUSTED_PROXIES=1) == "203.0.113.7"


def test_forwarded_address_is_ignored_without_a_trusted_proxy(app):
    assert _seen_address(app, TRUSTED_PROXIES=0) == "127.0.0.1"
