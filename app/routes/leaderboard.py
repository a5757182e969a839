"""The leaderboard: one tab per round and an overall view, with the utility/privacy trade-off plot."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import login_required
from markupsafe import Markup

from app.routes.params import query_int
from app.services import competition, leaderboard

bp = Blueprint("leaderboard", __name__)


@bp.route("/leaderboard/")
@login_required
def show():
    """`?round=N` for one round (default: the current one); `?view=overall` for all rounds combined;
    `?x=overhead` plots the bandwidth overhead instead of the utility cost."""
    current = competition.get_state().current_round
    if request.args.get("view") == "overall":
        body = leaderboard.overall_html(
            current, lambda board: render_template("leaderboard/_overall_body.html", board=board)
        )
        return render_template("leaderboard/overall.html", body=Markup(body), current=current)
    number = leaderboard.board_round(query_int("round"), current)
    axis = request.args.get("x", "utility")
    if axis not in leaderboard.AXES:
        abort(400, "The plot's axis x must be 'utility' or 'overhead'.")
    body = leaderboard.round_html(
        number, lambda board: render_template("leaderboard/_round_body.html", board=board), axis
    )
    return render_template("leaderboard/round.html", number=number, body=Markup(body), current=current)
