"""Staff exports as JSON (the same tables as the dashboard's CSV downloads)."""

from __future__ import annotations

from flask import abort, g, jsonify

from app.routes.api import bp
from app.routes.api.auth import admin_token_required
from app.routes.params import query_int
from app.services import exports


@bp.get("/admin/exports/<name>")
@admin_token_required
def get_export(name: str):
    """`leaderboard`, `submissions`, `matches` or `similarity` (optionally ?round=N) as {"name", "columns", "rows"}."""
    if g.api_token is None:  # personal data of every student: a script's token, not a browser session
        abort(401, "Send an admin token: Authorization: Bearer <token> (get one with POST /api/v1/tokens).")
    table = exports.export(name, query_int("round"))
    return jsonify(name=table.name, columns=table.columns, rows=table.as_dicts())
