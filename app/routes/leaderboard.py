"""The leaderboard: one tab per round and an overall view, with the utility/privacy trade-off plot."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
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
        how = current_app.config["LEADERBOARD_AGGREGATION"]
        body = leaderboard.cached_html(
            f"overall:{how}:{current}",
            lambda: render_template("leaderboard/_overall_body.html", board=leaderboard.overall_board(current)),
        )
        return render_template("leaderboard/overall.html", body=Markup(body), current=current)
    number = request.args.get("round", current, type=int)
    if number < 0 or number > current:
        abort(404, f"There is no round {number}: rounds go from 1 to {current}.")
    board = leaderboard.round_board(number)
    # The table and plot are the same for everyone: render them once per cache period.
    body = leaderboard.cached_html(
        f"round:{number}", lambda: render_template("leaderboard/_round_body.html", board=board)
    )
    return render_template("leaderboard/round.html", board=board, body=Markup(body), current=current)
