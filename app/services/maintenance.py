"""Staff maintenance: the sweeper, flushing matches or the whole database."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import Attack, Match, Round, RoundSet
from app.services import baseline, figures, lifecycle, round_sets, similarity
from app.services.competition import get_state
from app.services.leaderboard_cache import clear_leaderboard
from app.storage import get_storage

# Every top-level folder of storage keys the platform writes (what is kept per row, as figures and the traces the
# similarity view read, is named by row numbers, which a new database gives out again).
STORED_PREFIXES = (
    "submissions",
    "defences",
    "attacks",
    "attack_sets",
    "round_sets",
    figures.CACHE_PREFIX,
    similarity.HASHES_PREFIX.split("/")[0],
)


def sweep() -> dict[str, int]:
    """Everything the sweeper does (beat every minute, `flask sweep-submissions`): uploads, baseline runs and
    round sets that never reached the broker are sent, stale runs failed, leftover scratch folders removed."""
    return {**lifecycle.sweep(), **baseline.sweep(), **round_sets.sweep()}


def flush_matches() -> dict[str, int]:
    """Delete attacks, matches and rounds; the round goes back to 0. Submissions stay as history."""
    attacks = db.session.execute(sa.delete(Attack)).rowcount
    db.session.execute(sa.delete(RoundSet))
    matches = db.session.execute(sa.delete(Match)).rowcount
    db.session.execute(sa.delete(Round))
    get_state().current_round = 0
    db.session.commit()
    # Built per round, or kept per attack and round (figures): stale once they go, and a database may number the
    # next ones as those deleted.
    for prefix in ("attack_sets", "round_sets", figures.CACHE_PREFIX):
        get_storage().delete_prefix(prefix)
    clear_leaderboard()
    return {"attacks": attacks, "matches": matches}


def flush_db() -> None:
    """Delete every row (children first) and the stored files; the competition state goes back to defaults."""
    for table in reversed(db.metadata.sorted_tables):
        if table.name != "alembic_version":
            db.session.execute(table.delete())
    db.session.commit()
    clear_leaderboard()
    for prefix in STORED_PREFIXES:
        get_storage().delete_prefix(prefix)
