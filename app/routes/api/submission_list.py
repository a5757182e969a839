"""The team's uploads, newest first, page by page (for `srs status` and `srs submissions`)."""

from __future__ import annotations

from flask import jsonify

from app.routes.api import bp
from app.routes.api.auth import api_user, token_required
from app.routes.params import query_int
from app.services import submissions

MAX_PER_PAGE = 100


@bp.get("/submissions")
@token_required
def list_submissions():
    """Your team's submissions, newest first: ?page=1&per_page=20 (at most 100)."""
    page = query_int("page", 1, minimum=1)
    per_page = query_int("per_page", 20, minimum=1, maximum=MAX_PER_PAGE)
    user = api_user()
    if user.team is None:
        return jsonify(items=[], page=page, per_page=per_page, total=0, pages=0)
    listing = submissions.team_submissions(user.team, page=page, per_page=per_page)
    return jsonify(
        items=[submissions.submission_as_dict(s, user) for s in listing.items],
        page=page,
        per_page=per_page,
        total=listing.total,
        pages=listing.pages,
    )
