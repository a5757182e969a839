"""Home page and user profiles."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required

from app.extensions import db
from app.models import User, canonical_username
from app.routes.params import query_int
from app.services import competition, rounds

bp = Blueprint("main", __name__)


@bp.route("/")
@bp.route("/index")
@login_required
def index():
    """This round's matches, the user's team's own first."""
    state = competition.get_state()
    page = query_int("page", 1, minimum=1)
    matches = rounds.matches_page(
        state.current_round, current_user.team_id, page, current_app.config["MATCHES_PER_PAGE"]
    )
    return render_template("main/index.html", matches=matches, state=state)


@bp.route("/user/<username>")
@login_required
def user(username: str):
    """A user's profile and a link to their team."""
    profile = db.first_or_404(sa.select(User).where(User.username_canonical == canonical_username(username)))
    return render_template("main/user.html", user=profile)
