"""Every 2xx JSON answer an API test receives is checked against the OpenAPI document's schema for its operation,
so the document stays the single source of each body's shape (tests/client/test_fuzz_api.py fuzzes the rest)."""

from __future__ import annotations

from typing import Any

import jsonschema
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException

from app.routes.api.openapi import OPERATIONS, PREFIX, build_spec


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema dialect as JSON Schema: `nullable: true` becomes a null type (and enum value)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    return out


def check_body(app: Flask, method: str, path: str, response) -> None:
    """AssertionError naming the operation when a 2xx JSON body does not match its documented schema."""
    if not path.startswith(PREFIX + "/") or not 200 <= response.status_code < 300 or not response.is_json:
        return
    try:
        endpoint, _ = app.url_map.bind("localhost").match(path, method)
    except HTTPException:
        return
    op = OPERATIONS.get((endpoint, method.lower()))
    if op is None or op.schema is None or response.status_code != op.ok:
        return
    spec = _spec(app)
    schema = {"$ref": f"#/components/schemas/{op.schema}", "components": spec}
    try:
        jsonschema.validate(response.get_json(), schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(the body)"
        raise AssertionError(
            f"{method} {path} answered a body its OpenAPI schema {op.schema} does not allow, at {where}: {exc.message}"
        ) from None


def _spec(app: Flask) -> dict:
    cached = app.extensions.get("srs_test_api_schema")
    if cached is None:
        with app.test_request_context():
            cached = _json_schema(build_spec(app).to_dict()["components"])
        app.extensions["srs_test_api_schema"] = cached
    return cached


class SchemaCheckedClient(FlaskClient):
    """The test client, checking every 2xx API body it receives against the document."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        check_body(self.application, request.method, request.path, response)
        return response
