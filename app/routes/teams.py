"""Team pages."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.forms import ConfirmForm
from app.models import Team
from app.routes.params import query_int
from app.services import accounts, competition, figures, leaderboard, submissions, teams

bp = Blueprint("teams", __name__)


@bp.route("/team/<team_name>")
@login_required
def team(team_name: str):
    """Members, defences, matches with scores, and (for members and admins) the submission history."""
    team = db.first_or_404(sa.select(Team).where(Team.name == team_name))
    is_insider = current_user.is_admin or current_user.team_id == team.id
    history = None
    if is_insider:
        history = submissions.team_submissions(team, page=query_int("page", 1, minimum=1))
    # The join code is the team's consent to a new member: only members see it (and can renew it).
    join_code_form = ConfirmForm() if current_user.team_id == team.id else None
    # The team's lines of the leaderboards everyone sees (public-subset scores while a round is open).
    boards = {n: leaderboard.round_board(n) for n in range(1, competition.get_state().current_round + 1)}
    path = figures.team_path(team, boards)
    score_svg, parts_svg = figures.team_path_svgs(team, path)
    return render_template(
        "teams/team.html",
        team=team,
        overview=teams.team_overview(team),
        history=history,
        is_insider=is_insider,
        join_code_form=join_code_form,
        path=path,
        path_svgs=(score_svg, parts_svg),
    )


@bp.post("/team/<team_name>/join_code")
@login_required
def renew_join_code(team_name: str):
    """Members replace their team's join code; the old one stops working."""
    team = db.first_or_404(sa.select(Team).where(Team.name == team_name))
    if current_user.team_id != team.id:
        abort(403, "Only the team's members can renew its join code.")
    accounts.renew_join_code(team)
    flash("Your team has a new join code; the old one no longer works.", "success")
    return redirect(url_for("teams.team", team_name=team.name))
