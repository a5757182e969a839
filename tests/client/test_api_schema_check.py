"""The check every API test runs on 2xx bodies (tests/api_schema.py) catches a body its document does not allow."""

from __future__ import annotations

import pytest
from flask import Response

from tests.api_schema import check_body


def test_a_body_that_breaks_its_schema_is_named(app):
    wrong = Response('{"username": 7}', status=200, mimetype="application/json")
    with pytest.raises(AssertionError, match=r"GET /api/v1/me answered a body its OpenAPI schema Me does not allow"):
        check_body(app, "GET", "/api/v1/me", wrong)


def test_errors_and_other_pages_are_left_to_their_own_tests(app):
    check_body(app, "GET", "/api/v1/me", Response('{"error": "x"}', status=401, mimetype="application/json"))
    check_body(app, "GET", "/index", Response("<html>", status=200))
