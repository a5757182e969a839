"""Which attack scores a viewer may see: the public-subset scores while a round is open, the final ones after.

While a round is open, a score on the whole test set would be a label oracle (upload, read the score, change
one capture's answer, upload again): students see only the scores on each test set's public subset, a share
(PUBLIC_SCORE_FRACTION) drawn with the split and never revealed. Since students can probe the public captures,
they do not count in the final scores: those are computed on the private captures (the rest of the test set) at
upload time too, kept in Attack.accuracy/top5_accuracy/roc_auc, and published when the round closes. Staff see
both. Attacks scored by scorer version 1 hold final scores on all captures: they are labelled so until rescored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from app.evaluation.attack import ALL_CAPTURES, PRIVATE_SUBSET, PUBLIC_SUBSET
from app.extensions import db
from app.models import Attack, Match, Round, Submission, SubmissionKind

PUBLIC = PUBLIC_SUBSET  # the public subset: shown while the round is open
PRIVATE = PRIVATE_SUBSET  # the private captures: the final scores, published when the round closes
ALL = ALL_CAPTURES  # final scores on all captures: scored before scorer version 2, or a set without public subset
FINAL_NOTE = "final scores on the private subset when the round closes"


def subset_label(subset: str, nb_captures: int | None = None) -> str:
    """What a score counts, in words: "private subset (20 captures)", "public subset (10 captures)", ..."""
    if subset == ALL:
        return f"all {nb_captures} captures" if nb_captures else "all captures"
    size = f"{nb_captures} captures" if nb_captures else "a share of the test set"
    return f"{subset} subset ({size})"


def on_label(subset: str, label: str) -> str:
    """The label with its preposition: "on the private subset (20 captures)", "on all 30 captures"."""
    return f"on {label}" if subset == ALL else f"on the {label}"


def public_note(nb_captures: int | None) -> str:
    """The label of public-subset scores."""
    return f"{subset_label(PUBLIC, nb_captures)}; {FINAL_NOTE}"


def final_subset(attack: Attack | sa.Row) -> tuple[str, int | None]:
    """(PRIVATE or ALL, number of captures) that an attack's final scores count, as recorded when it was scored
    (in its provenance: `attack` is an Attack or a row with its `provenance`).

    Attacks scored by scorer version 1 recorded neither: their final scores count all captures (number unknown).
    """
    recorded = attack.provenance or {}
    return recorded.get("subset", ALL), recorded.get("nb_captures")


def final_label(attacks) -> tuple[str, str]:
    """(subset, label) of the final scores of several attacks (a round, a submission): PRIVATE with
    "private subset (N captures)" when all count the private captures, ALL when all count every capture, and
    PRIVATE with a label naming the exceptions when they are mixed."""
    found = [final_subset(a) for a in attacks if a is not None]
    subsets = {subset for subset, _ in found}
    if not found or subsets == {PRIVATE}:
        sizes = {nb for _, nb in found}
        return PRIVATE, subset_label(PRIVATE, sizes.pop() if len(sizes) == 1 else None)
    if subsets == {ALL}:
        sizes = {nb for _, nb in found}
        return ALL, subset_label(ALL, sizes.pop() if len(sizes) == 1 else None)
    old = sum(subset == ALL for subset, _ in found)
    return PRIVATE, f"private subset of each test set, except {old} attack(s) scored earlier on all captures"


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
    """{accuracy, top5_accuracy, roc_auc} of an attack on the public subset (PUBLIC) or its final ones (PRIVATE:
    see final_subset for what they count); None if there are none.

    Attacks scored before public subsets existed (or against a set without one) have no public scores: they
    stay hidden until the round closes.
    """
    if subset != PUBLIC:
        return {name: getattr(attack, name) for name in Attack.SCORE_NAMES}
    if not attack.public_scores:
        return None
    return {name: attack.public_scores.get(name) for name in Attack.SCORE_NAMES}


@dataclass
class ScoreView:
    """The scores of one attack submission as one viewer may see them, per target."""

    subset: str  # PUBLIC while the round is open, PRIVATE once it closed (ALL: scored by scorer version 1)
    # per target: team_id, team_name, accuracy, top5_accuracy, roc_auc, nb_captures, intervals, subset
    rows: list[dict[str, Any]]
    note: str | None = None  # which captures `rows` count, in words: "private subset (20 captures)"
    other_rows: list[dict[str, Any]] = field(default_factory=list)  # final (staff, open) or public (closed) scores
    other_note: str | None = None  # which captures `other_rows` count


def _stored_rows(submission: Submission) -> list[dict[str, Any]]:
    """The per-target rows recorded with the submission: public-subset scores (marked subset=public).

    Rows recorded before public subsets existed hold final scores and no mark: they are never shown as public.
    """
    rows = (submission.results or {}).get("scores") or []
    return [dict(r) for r in rows if isinstance(r, dict)]


def _final_rows(submission: Submission, stored: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, str]:
    """Final scores of the submission's attacks, from its Attack rows, per target (in the stored order), with
    their subset and its label (see final_label)."""
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
        subset, nb_captures = final_subset(attack)
        if nb_captures is None:  # scored by scorer version 1: on all captures of the test set
            nb_captures = sizes.get("nb_test_captures", sizes.get("nb_captures"))
        rows.append(
            {
                "team_id": team_id,
                "team_name": names.get(team_id),
                **attack_scores(attack, PRIVATE),
                "intervals": attack.intervals,
                "nb_captures": nb_captures,
                "subset": subset,
            }
        )
    subset, label = final_label(by_team.values())
    if subset == ALL and len({r["nb_captures"] for r in rows}) == 1:
        label = subset_label(ALL, rows[0]["nb_captures"])
    return rows, subset, label


def _public_rows(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in stored:
        if r.get("subset") == PUBLIC:
            rows.append(r)
        else:  # recorded before public subsets: final scores, hidden until the round closes
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
        final, subset, label = _final_rows(submission, stored)
        return ScoreView(subset, final, label, public, note.split(";")[0])
    if not staff:
        return ScoreView(PUBLIC, public, note)
    final, _, label = _final_rows(submission, stored)
    return ScoreView(PUBLIC, public, note, final, label)


def results_for(submission: Submission, view: ScoreView | None, *, staff: bool) -> dict[str, Any] | None:
    """The submission's results as the viewer of `view` (score_view) may read them: for an attack, `scores` holds
    the public-subset scores while its round is open (`scores_subset` "public") and the final scores once it
    closed (`scores_subset` "private": on the private captures; "all" for attacks scored before final scores
    left the public subset out), with `public_scores` beside them; `scores_note` says which captures `scores`
    count. Staff also get `private_scores` (and `private_scores_note`) before the round closes."""
    results = copy.deepcopy(submission.results)
    if view is None or results is None:
        return results
    results["scores"] = view.rows
    results["scores_subset"] = view.subset
    results["scores_note"] = view.note
    if view.subset != PUBLIC:
        results["public_scores"] = view.other_rows
    elif staff:
        results["private_scores"] = view.other_rows
        results["private_scores_note"] = view.other_note
    return results
