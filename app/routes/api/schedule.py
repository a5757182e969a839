"""The competition's timeline for staff scripts: GET/POST/DELETE /api/v1/schedule."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, jsonify, request

from app.routes.api import bp
from app.routes.api.auth import admin_token_required
from app.services import schedule


def _parse_due(value: object) -> datetime:
    """An ISO 8601 time; with an offset it is converted to UTC, without one it is taken as UTC."""
    if not isinstance(value, str) or len(value) > 40:
        abort(400, '"due_at" must be an ISO 8601 date and time, e.g. "2026-03-01T23:59:00Z" (UTC).')
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        abort(400, f'"due_at" {value!r} is not an ISO 8601 date and time, e.g. "2026-03-01T23:59:00Z".')
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@bp.get("/schedule")
@admin_token_required
def get_schedule():
    """Pending actions (soonest first) and applied ones (latest first)."""
    return jsonify(
        pending=[schedule.as_dict(r) for r in schedule.pending()],
        applied=[schedule.as_dict(r) for r in schedule.history()],
    )


@bp.post("/schedule")
@admin_token_required
def post_schedule():
    """Plan an action: {"action": "phase"|"registration"|"round", "value": ..., "due_at": iso8601}; 201."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "action" not in body or "due_at" not in body:
        abort(400, 'Send a JSON object {"action": "phase"|"registration"|"round", "value": ..., "due_at": "...Z"}.')
    value = body.get("value")
    if value is not None and not isinstance(value, str):
        abort(400, '"value" must be a string: a phase name, or "open"/"closed" for registration.')
    if not isinstance(body["action"], str):
        abort(400, '"action" must be one of "phase", "registration", "round".')
    due_at = _parse_due(body["due_at"])
    row = schedule.add(body["action"], value, due_at)
    return jsonify(schedule.as_dict(row)), 201


@bp.delete("/schedule/<int:action_id>")
@admin_token_required
def delete_schedule(action_id: int):
    """Remove a pending action; 409 once applied."""
    schedule.delete(action_id)
    return "", 204
