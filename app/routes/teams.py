"""Team pages."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from app.extensions import db
from app.models import Team
from app.services import submissions, teams

bp = Blueprint("teams", __name__)


@bp.route("/team/<team_name>")
@login_required
def team(team_name: str):
    """Members, defences, matches with scores, and (for members and admins) the submission history."""
    team = db.first_or_404(sa.select(Team).where(Team.name == team_name))
    is_insider = current_user.is_admin or current_user.team_id == team.id
    history = None
    if is_insider:
        history = submissions.team_submissions(team, page=request.args.get("page", 1, type=int))
    return render_template(
        "teams/team.html", team=team, overview=teams.team_overview(team), history=history, is_insider=is_insider
    )
