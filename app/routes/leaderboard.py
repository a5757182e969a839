"""The leaderboard: one tab per round and an overall view, with the utility/privacy trade-off plot."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import login_required
from markupsafe import Markup

from app.services import competition, leaderboard

bp = Blueprint("leaderboard", __name__)


@bp.route("/leaderboard/")
@login_required
def show():
    """`?round=N` for one round (default: the current one); `?view=overall` for all rounds combined."""
    current = competition.get_state().current_round
    if request.args.get("view") == "overall":
        board = leaderboard.overall_board(current)
        return render_template("leaderboard/overall.html", board=board, current=current)
    number = request.args.get("round", current, type=int)
    if number < 0 or number > current:
        abort(404, f"There is no round {number}: rounds go from 1 to {current}.")
    board = leaderboard.round_board(number)
    return render_template("leaderboard/round.html", board=board, current=current, plot=Markup(board["plot_svg"]))
