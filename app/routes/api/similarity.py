"""The similarity view of a round (staff): pairs of uploads that look copied, with their evidence."""

from __future__ import annotations

from flask import jsonify, request

from app.routes.api import bp
from app.routes.api.auth import admin_token_required
from app.routes.params import query_int
from app.services import similarity


@bp.get("/admin/similarity")
@admin_token_required
def get_similarity():
    """A round's suspicious pairs of attacks and defences, most suspicious first (`all=1`: every pair compared)."""
    number = query_int("round")
    return jsonify(similarity.round_similarity(number, everything=request.args.get("all") in ("1", "true")))
