"""Which attack scores a viewer may see: the public-subset scores while a round is open, the full ones after.

While a round is open, a score on the whole test set would be a label oracle (upload, read the score, change
one capture's answer, upload again): students see only the scores on each test set's public subset, a share
(PUBLIC_SCORE_FRACTION) drawn with the split and never revealed. The full scores are computed at upload time
too, kept in Attack.accuracy/top5_accuracy/roc_auc, and published when the round closes. Staff see both.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import Attack, Match, Round, Submission, SubmissionKind

PUBLIC = "public"
FULL = "full"


def public_note(nb_captures: int | None) -> str:
    """The label of public-subset scores."""
    size = f"{nb_captures} captures" if nb_captures else "a share of the test set"
    return f"public subset ({size}); full scores when the round closes"


def closed_rounds(numbers: set[int] | list[int] | None = None) -> set[int]:
    """The numbers of the rounds that have ended (of `numbers` when given)."""
    query = sa.select(Round.number).where(Round.closed_at.is_not(None))
    if numbers is not None:
        query = query.where(Round.number.in_(list(numbers)))
    return set(db.session.scalars(query))


def is_closed(number: int) -> bool:
    """Whether round `number` has ended; a round that does not exist has published nothing."""
    return bool(closed_rounds({number}))


def attack_scores(attack: Attack, subset: str) -> dict[str, float] | None:
    """{accuracy, top5_accuracy, roc_auc} of an attack on the public subset or in full; None if there are none.

    Attacks scored before public subsets existed (or against a set without one) have no public scores: they
    stay hidden until the round closes.
    """
    if subset == FULL:
        return {name: getattr(attack, name) for name in Attack.SCORE_NAMES}
    if not attack.public_scores:
        return None
    return {name: attack.public_scores.get(name) for name in Attack.SCORE_NAMES}


@dataclass
class ScoreView:
    """The scores of one attack submission as one viewer may see them, per target."""

    subset: str  # PUBLIC while the round is open, FULL once it closed
    rows: list[dict[str, Any]]  # per target: team_id, team_name, accuracy, top5_accuracy, roc_auc, nb_captures
    note: str | None = None  # the label shown next to public scores
    other_rows: list[dict[str, Any]] = field(default_factory=list)  # full (staff, open) or public (closed) scores

    @property
    def other_subset(self) -> str:
        return FULL if self.subset == PUBLIC else PUBLIC


def _stored_rows(submission: Submission) -> list[dict[str, Any]]:
    """The per-target rows recorded with the submission: public-subset scores (marked subset=public).

    Rows recorded before public subsets existed hold full scores and no mark: they are never shown as public.
    """
    rows = (submission.results or {}).get("scores") or []
    return [dict(r) for r in rows if isinstance(r, dict)]


def _full_rows(submission: Submission, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Full scores of the submission's attacks, from its Attack rows, per target (in the stored order)."""
    by_team = {
        defender: attack
        for attack, defender in db.session.execute(
            sa.select(Attack, Match.defender_team_id)
            .join(Match, Match.id == Attack.match_id)
            .where(Attack.submission_id == submission.id)
        ).all()
    }
    names = {r.get("team_id"): r.get("team_name") for r in stored}
    rows = []
    for team_id in [r.get("team_id") for r in stored if r.get("team_id") in by_team] or sorted(by_team):
        attack = by_team[team_id]
        sizes = next((r for r in stored if r.get("team_id") == team_id), {})
        rows.append(
            {
                "team_id": team_id,
                "team_name": names.get(team_id),
                **attack_scores(attack, FULL),
                "intervals": attack.intervals,
                "nb_captures": sizes.get("nb_test_captures", sizes.get("nb_captures")),
                "subset": FULL,
            }
        )
    return rows


def _public_rows(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in stored:
        if r.get("subset") == PUBLIC:
            rows.append(r)
        else:  # recorded before public subsets: full scores, hidden until the round closes
            rows.append({"team_id": r.get("team_id"), "team_name": r.get("team_name"), "subset": PUBLIC})
    for r in rows:
        for name in (*Attack.SCORE_NAMES, "nb_captures", "intervals"):
            r.setdefault(name, None)
    return rows


def score_view(submission: Submission, *, staff: bool) -> ScoreView | None:
    """The scores of an attack submission that a viewer may see; None for other kinds or without scores."""
    if submission.kind is not SubmissionKind.ATTACK:
        return None
    stored = _stored_rows(submission)
    if not stored:
        return None
    public = _public_rows(stored)
    sizes = {r.get("nb_captures") for r in public if r.get("nb_captures")}
    note = public_note(sizes.pop() if len(sizes) == 1 else None)
    if is_closed(submission.round):
        return ScoreView(FULL, _full_rows(submission, stored), None, public)
    return ScoreView(PUBLIC, public, note, _full_rows(submission, stored) if staff else [])


def results_for(submission: Submission, *, staff: bool) -> dict[str, Any] | None:
    """The submission's results as the viewer may read them (API and pages): for an attack, `scores` holds
    the public-subset scores while its round is open (`scores_subset` "public", `scores_note` the label) and
    the full scores once it closed (with `public_scores` beside them); staff also get `full_scores` before."""
    results = copy.deepcopy(submission.results)
    view = score_view(submission, staff=staff)
    if view is None or results is None:
        return results
    results["scores"] = view.rows
    results["scores_subset"] = view.subset
    results["scores_note"] = view.note
    if view.subset == FULL:
        results["public_scores"] = view.other_rows
    elif staff:
        results["full_scores"] = view.other_rows
    return results
