"""Leaderboards."""

from __future__ import annotations

from flask import abort, jsonify, request

from app.routes.api import bp
from app.routes.api.auth import token_required
from app.services import competition, leaderboard

ROW_FIELDS = (
    "rank",
    "team_id",
    "team_name",
    "utility_score",
    "attack_performance",
    "score",
    "privacy_leakage",
    "attacks_done",
    "attacks_expected",
    "messages",
)


@bp.get("/leaderboard")
@token_required
def get_leaderboard():
    """One round's rows (default: the current round); numbers are null when missing."""
    current = competition.get_state().current_round
    try:
        number = leaderboard.board_round(request.args.get("round", type=int), current)
    except leaderboard.NoSuchRound as exc:
        abort(404, str(exc))
    board = leaderboard.round_board(number)
    rows = [{k: r[k] for k in ROW_FIELDS} for r in board["rows"]]
    public = board.get("public_subset", False)
    return jsonify(round=number, generated=board["generated"], public_subset=public, rows=rows)


@bp.get("/leaderboard/overall")
@token_required
def get_overall_leaderboard():
    """All rounds combined by LEADERBOARD_AGGREGATION."""
    return jsonify(leaderboard.overall_board(competition.get_state().current_round))
