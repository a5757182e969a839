"""Rounds, matches and attacks."""

from __future__ import annotations

from flask import abort, current_app, jsonify, request

from app.routes.api import bp
from app.routes.api.auth import admin_token_required, token_required
from app.routes.params import query_int
from app.services import competition, rounds


@bp.post("/rounds")
@admin_token_required
def post_round():
    """Generate round n's matches: body {"round": n}; 201 with the matches."""
    body = request.get_json(silent=True)
    number = body.get("round") if isinstance(body, dict) else None
    if not isinstance(number, int) or isinstance(number, bool):
        abort(400, 'Send a JSON object {"round": n} with the next round number.')
    matches = rounds.generate_round(number, current_app.config["MATCHES_PER_TEAM"])
    return jsonify(round=number, matches=[rounds.match_as_dict(m) for m in matches]), 201


@bp.post("/rounds/<int:number>/close")
@admin_token_required
def close_round(number: int):
    """Close round n now: its final scores (on the private subset) are published."""
    closed = rounds.close_round(number)
    return jsonify(round=closed.number, closed_at=closed.closed_at.isoformat() + "Z")


@bp.get("/matches")
@token_required
def get_matches():
    """A round's matches (default: the current round)."""
    number = query_int("round")
    if number is None:
        number = competition.get_state().current_round
    return jsonify([rounds.match_as_dict(m) for m in rounds.round_matches(number)])
