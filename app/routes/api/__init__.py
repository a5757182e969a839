"""JSON API v1 (token auth); every answer, errors included, is JSON."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from app.routes.api import (  # noqa: E402,F401  (routes register on bp)
    auth,
    competition,
    exports,
    leaderboard,
    openapi,
    rounds,
    schedule,
    similarity,
    submission_list,
    uploads,
)
