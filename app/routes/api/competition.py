"""Who am I, and the competition's state."""

from __future__ import annotations

from flask import abort, current_app, jsonify, request

from app.routes.api import bp
from app.routes.api.auth import admin_token_required, api_user, token_required
from app.services import competition, quotas


@bp.get("/me")
@token_required
def me():
    user = api_user()
    return jsonify(
        username=user.username,
        is_admin=user.is_admin,
        team_id=user.team_id,
        team_name=user.team.name if user.team else None,
        team_join_code=user.team.join_code if user.team else None,
        uploads_left=quotas.uploads_left(user),
    )


@bp.get("/competition")
@token_required
def get_competition():
    return jsonify(competition.state_as_dict(competition.get_state(), current_app.config))


@bp.put("/competition")
@admin_token_required
def put_competition():
    """Change any of `phase` and `registration_open`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not ({"phase", "registration_open"} & body.keys()):
        abort(400, 'Send a JSON object with "phase" and/or "registration_open".')
    phase = None
    if "phase" in body:
        if not isinstance(body["phase"], str):
            abort(400, '"phase" must be one of "Defence", "Attack", "Both", "None" (a string).')
        try:
            phase = competition.parse_phase(body["phase"])
        except ValueError as exc:
            abort(400, str(exc))
    registration_open = body.get("registration_open")
    if "registration_open" in body and not isinstance(registration_open, bool):
        abort(400, '"registration_open" must be true or false (leave it out to keep it as it is).')
    state = competition.update_state(phase=phase, registration_open=registration_open)
    return jsonify(competition.state_as_dict(state, current_app.config))
