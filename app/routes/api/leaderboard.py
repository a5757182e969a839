"""Leaderboards."""

from __future__ import annotations

from flask import jsonify

from app.routes.api import bp
from app.routes.api.auth import token_required
from app.routes.params import query_int
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
    "attack_performance_pm",
    "privacy_leakage_pm",
    "baseline_roc_auc",
    "baseline_accuracy",
    "score_pm",
    "tied_with_above",
)
# LEADERBOARD_SCORING=tradeoff: rank and score are that mode's; the original columns stay for comparison.
TRADEOFF_FIELDS = (
    "attack_score",
    "attack_score_pm",
    "defence_score",
    "leakage",
    "leakage_pm",
    "leakage_source",
    "cost_factor",
    "tie_break",
)


@bp.get("/leaderboard")
@token_required
def get_leaderboard():
    """One round's rows (default: the current round); numbers are null when missing."""
    current = competition.get_state().current_round
    number = leaderboard.board_round(query_int("round"), current)
    board = leaderboard.round_board(number)
    fields = ROW_FIELDS + (TRADEOFF_FIELDS if board["scoring"] == "tradeoff" else ())
    rows = [{k: r[k] for k in fields} for r in board["rows"]]
    public = board.get("public_subset", False)
    return jsonify(
        round=number,
        scoring=board["scoring"],
        generated=board["generated"],
        public_subset=public,
        scores_subset=board.get("scores_subset"),
        scores_note=board.get("scores_note"),
        rows=rows,
    )


@bp.get("/leaderboard/overall")
@token_required
def get_overall_leaderboard():
    """All rounds combined by LEADERBOARD_AGGREGATION."""
    return jsonify(leaderboard.overall_board(competition.get_state().current_round))
