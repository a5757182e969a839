"""Rounds, matches and attacks."""

from __future__ import annotations

from flask import abort, current_app, jsonify, request

from app.models import SubmissionKind
from app.routes.api import bp
from app.routes.api.auth import admin_token_required, api_user, token_required
from app.routes.api.uploads import upload_response
from app.services import attacks, competition, rounds, submissions


@bp.post("/rounds")
@admin_token_required
def post_round():
    """Generate round n's matches: body {"round": n}; 201 with the matches."""
    body = request.get_json(silent=True)
    number = body.get("round") if isinstance(body, dict) else None
    if not isinstance(number, int) or isinstance(number, bool):
        abort(400, 'Send a JSON object {"round": n} with the next round number.')
    try:
        matches = rounds.generate_round(number, current_app.config["MATCHES_PER_TEAM"])
    except rounds.RoundConflict as exc:
        return jsonify(error="round_conflict", message=str(exc)), 409
    return jsonify(round=number, matches=[rounds.match_as_dict(m) for m in matches]), 201


@bp.get("/matches")
@token_required
def get_matches():
    """A round's matches (default: the current round)."""
    number = request.args.get("round", type=int)
    if number is None:
        number = competition.get_state().current_round
    return jsonify([rounds.match_as_dict(m) for m in rounds.round_matches(number)])


@bp.get("/attack/sets")
@token_required
def get_attack_sets():
    """The zip of this round's targets' train and test sets."""
    user = api_user()
    try:
        submissions.check_may_upload(SubmissionKind.ATTACK, user)
    except submissions.UploadRefused as exc:
        return jsonify(error=exc.code, message=exc.message), exc.status
    response = attacks.send_attack_sets(user.team_id, competition.get_state().current_round)
    if response is None:
        abort(404, "Your team has no target in the current round.")
    return response


@bp.post("/attacks")
@token_required
def post_attack():
    """Upload a classification (multipart field `file`); 202 with the submission's id and status URL."""
    return upload_response(lambda: attacks.submit(api_user(), request.files.get("file")))
