"""What a team page shows: defences, and matches as attacker and defender with their scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Attack, BaselineRun, Defence, Match, Team
from app.services import scores
from app.services.baseline import latest_baselines


@dataclass
class MatchLine:
    match: Match
    attack: Attack | None
    # What everyone may see of the attack: public-subset scores while the round is open, final ones after.
    scores: dict | None = None
    public: bool = False
    note: str | None = None  # which captures the scores count: "private subset (20 captures)", ...


@dataclass
class TeamOverview:
    defences: list[Defence] = field(default_factory=list)
    as_attacker: list[MatchLine] = field(default_factory=list)
    as_defender: list[MatchLine] = field(default_factory=list)
    baselines: dict[int, BaselineRun] = field(default_factory=dict)  # privacy estimate by defence id


def latest_attacks(match_ids: list[int]) -> dict[int, Attack]:
    """The attack that counts for each match: the one of the last uploaded submission."""
    if not match_ids:
        return {}
    latest = sa.select(Attack.match_id, sa.func.max(Attack.submission_id)).where(Attack.match_id.in_(match_ids))
    latest = latest.group_by(Attack.match_id)
    counted = sa.tuple_(Attack.match_id, Attack.submission_id).in_(latest)
    return {a.match_id: a for a in db.session.scalars(sa.select(Attack).where(counted))}


def team_overview(team: Team) -> TeamOverview:
    defences = list(
        db.session.scalars(sa.select(Defence).where(Defence.team_id == team.id).order_by(Defence.id.desc()))
    )
    matches = list(
        db.session.scalars(
            sa.select(Match)
            .where(sa.or_(Match.attacker_team_id == team.id, Match.defender_team_id == team.id))
            .options(joinedload(Match.attacker), joinedload(Match.defender))
            .order_by(Match.round.desc(), Match.id)
        )
    )
    attacks = latest_attacks([m.id for m in matches])
    closed = scores.closed_rounds({m.round for m in matches})
    overview = TeamOverview(defences=defences, baselines=latest_baselines([d.id for d in defences]))
    for m in matches:
        attack, public = attacks.get(m.id), m.round not in closed
        shown = scores.attack_scores(attack, scores.PUBLIC if public else scores.PRIVATE) if attack else None
        line = MatchLine(m, attack, shown, public, _note(attack, public) if shown else None)
        (overview.as_attacker if m.attacker_team_id == team.id else overview.as_defender).append(line)
    return overview


def _note(attack: Attack, public: bool) -> str:
    """Which captures the scores shown for an attack count."""
    if public:
        return scores.public_note((attack.public_scores or {}).get("nb_captures"))
    return scores.subset_label(*scores.final_subset(attack))
