"""Rounds and matches: listing now; generation lives here too."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import aliased, joinedload

from app.extensions import db
from app.models import Match, Team


def matches_page(round_number: int, team_id: int | None, page: int, per_page: int):
    """A page of a round's matches, the given team's own first, then by attacker and defender name."""
    attacker, defender = aliased(Team), aliased(Team)
    own_first = sa.case((sa.or_(Match.attacker_team_id == team_id, Match.defender_team_id == team_id), 0), else_=1)
    query = (
        sa.select(Match)
        .join(attacker, Match.attacker_team_id == attacker.id)
        .join(defender, Match.defender_team_id == defender.id)
        .where(Match.round == round_number)
        .options(joinedload(Match.attacker), joinedload(Match.defender))
        .order_by(own_first, attacker.name, defender.name)
    )
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def round_matches(round_number: int) -> list[Match]:
    return list(db.session.scalars(sa.select(Match).where(Match.round == round_number).order_by(Match.id)))


def match_as_dict(m: Match) -> dict:
    return {
        "id": m.id,
        "round": m.round,
        "attacker_team_id": m.attacker_team_id,
        "defender_team_id": m.defender_team_id,
        "attacker_team_name": m.attacker.name,
        "defender_team_name": m.defender.name,
    }
