"""Staff exports (grading sheet, submissions, matches, similar uploads) as tables, for CSV downloads, `flask export`
and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.csv_safe import to_csv
from app.extensions import db
from app.models import Attack, Defence, Match, Round, Submission, SubmissionKind, Team, User
from app.services import audit, competition, leaderboard, scores, similarity
from app.services.errors import NotFound
from app.services.teams import latest_attacks

NAMES = ("leaderboard", "submissions", "matches", "similarity")


class ExportError(NotFound):
    """An export that cannot be made: an unknown name, a round out of range."""


@dataclass
class Table:
    """A named table of rows; `filename` is what a download is called."""

    name: str
    columns: list[str]
    rows: list[list[Any]]

    @property
    def filename(self) -> str:
        return f"srs-{self.name}.csv"

    def as_csv(self) -> str:
        return to_csv(self.columns, self.rows)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() + "Z" if dt else None


def _check_round(number: int | None) -> None:
    current = competition.get_state().current_round
    if number is not None and not 0 <= number <= current:
        raise ExportError(f"There is no round {number}: rounds go from 1 to {current}.")


def _members(team_ids: list[int]) -> dict[int, list[User]]:
    """Members of each team (one query), in registration order."""
    members: dict[int, list[User]] = {tid: [] for tid in team_ids}
    if team_ids:
        for user in db.session.scalars(sa.select(User).where(User.team_id.in_(team_ids)).order_by(User.id)):
            members[user.team_id].append(user)
    return members


def _member_cells(users: list[User]) -> list[str]:
    return [
        ";".join(u.username for u in users),
        ";".join(u.sciper or "" for u in users),
        ";".join(u.email for u in users),
    ]


# The tradeoff mode's own columns (rank and score are already that mode's): fractions in [0, 1].
_TRADEOFF_COLUMNS = ("attack_score", "defence_score", "leakage", "leakage_source", "cost_factor", "tie_break")


def leaderboard_table(number: int | None = None) -> Table:
    """The grading sheet: one round's leaderboard with every column, or (no round) the overall one with each
    round's score and rank; both with members' usernames, SCIPERs and e-mails."""
    _check_round(number)
    if number is not None:
        board = leaderboard.round_board(number)
        rows = board["rows"]
        members = _members([r["team_id"] for r in rows])
        columns = ["round", "rank", "team_id", "team_name", "members", "scipers", "emails", "utility_score"]
        columns += ["attack_performance", "attacks_done", "attacks_expected", "score", "privacy_leakage", "messages"]
        columns += ["score_pm", "tied_with_above"]
        extra = _TRADEOFF_COLUMNS if board["scoring"] == "tradeoff" else ()
        columns += extra
        body = [
            [number, r["rank"], r["team_id"], r["team_name"], *_member_cells(members[r["team_id"]])]
            + [r["utility_score"], r["attack_performance"], r["attacks_done"], r["attacks_expected"]]
            + [r["score"], r["privacy_leakage"], " ".join(r["messages"]), r.get("score_pm"), r["tied_with_above"]]
            + [r.get(name) for name in extra]
            for r in rows
        ]
        return Table(f"leaderboard-round-{number}", columns, body)
    current = competition.get_state().current_round
    overall = leaderboard.overall_board(current)
    ranks = {n: {r["team_id"]: r["rank"] for r in leaderboard.round_board(n)["rows"]} for n in range(1, current + 1)}
    members = _members([r["team_id"] for r in overall["rows"]])
    columns = ["rank", "team_id", "team_name", "members", "scipers", "emails", "score", "aggregation"]
    columns += ["rounds_played", "rounds_scored"]
    for n in range(1, current + 1):
        columns += [f"round_{n}_score", f"round_{n}_rank"]
    body = []
    for r in overall["rows"]:
        line = [r["rank"], r["team_id"], r["team_name"], *_member_cells(members[r["team_id"]]), r["score"]]
        line += [overall["aggregation"], r["rounds_played"], r["rounds_scored"]]
        for n in range(1, current + 1):
            line += [r["round_scores"].get(str(n)), ranks[n].get(r["team_id"])]
        body.append(line)
    return Table("leaderboard-overall", columns, body)


def _check_summary(results: dict | None) -> str:
    checks = (results or {}).get("checks") or []
    return "; ".join(c.get("name", "?") for c in checks if not c.get("passed"))


def _scores_summary(results: dict | None) -> str:
    """Per target ROC-AUC as recorded with the submission: on the public subset (staff export)."""
    scores = (results or {}).get("scores") or []
    return "; ".join(f"{s.get('team_name') or s.get('team_id')}: {s.get('roc_auc')}" for s in scores)


def _final_aucs(submission_ids: list[int]) -> dict[int, str]:
    """Per attack submission, each target's final ROC-AUC and the captures it counts (staff see it before the
    round closes): "bob: 0.61 (private subset (200 captures))"."""
    found: dict[int, list[str]] = {}
    rows = db.session.execute(
        sa.select(Attack.submission_id, Team.name, Attack.roc_auc, Attack.provenance)
        .join(Match, Match.id == Attack.match_id)
        .join(Team, Team.id == Match.defender_team_id)
        .where(Attack.submission_id.in_(submission_ids))
        .order_by(Attack.submission_id, Team.id)
    )
    for row in rows:
        label = scores.subset_label(*scores.final_subset(row))
        found.setdefault(row.submission_id, []).append(f"{row.name}: {row.roc_auc} ({label})")
    return {k: "; ".join(v) for k, v in found.items()}


def submissions_table(number: int | None = None) -> Table:
    """Every submission (of one round when given), newest first, with its timings and results."""
    _check_round(number)
    query = sa.select(Submission).options(joinedload(Submission.team), joinedload(Submission.user))
    if number is not None:
        query = query.where(Submission.round == number)
    columns = ["id", "kind", "status", "team_name", "username", "round", "original_filename", "size", "sha256"]
    columns += ["created_at", "enqueued_at", "started_at", "finished_at", "attempts", "error"]
    columns += ["utility_score", "attack_roc_auc", "failed_checks", "attack_public_roc_auc", "worker"]
    found = list(db.session.scalars(query.order_by(Submission.id.desc())))
    final = _final_aucs([s.id for s in found if s.kind is SubmissionKind.ATTACK])
    body = [
        [s.id, s.kind.value, s.status.value, s.team.name, s.user.username, s.round, s.original_filename, s.size]
        + [s.sha256, _iso(s.created_at), _iso(s.enqueued_at), _iso(s.started_at), _iso(s.finished_at)]
        + [s.attempts, s.error, (s.results or {}).get("utility_score"), final.get(s.id, "")]
        + [_check_summary(s.results), _scores_summary(s.results) if s.kind is SubmissionKind.ATTACK else ""]
        + [s.worker or ""]
        for s in found
    ]
    suffix = f"-round-{number}" if number is not None else ""
    return Table("submissions" + suffix, columns, body)


def matches_table(number: int | None = None) -> Table:
    """Every match (of one round when given) with the defence it was pinned to and the attack that counts."""
    _check_round(number)
    query = sa.select(Match).options(
        joinedload(Match.attacker),
        joinedload(Match.defender),
        joinedload(Match.defence).load_only(Defence.submission_id, Defence.utility_score),
    )
    if number is not None:
        query = query.where(Match.round == number)
    matches = list(db.session.scalars(query.order_by(Match.round, Match.id)))
    attacks = latest_attacks([m.id for m in matches])
    columns = ["round", "match_id", "attacker_team", "defender_team", "defence_submission_id", "utility_score"]
    columns += ["attack_submission_id", "accuracy", "top5_accuracy", "roc_auc", "scored_at"]
    # Staff see both: the final scores above, and the public-subset ones students see while the round is open.
    columns += ["public_accuracy", "public_top5_accuracy", "public_roc_auc", "round_closed"]
    # Which captures each side counts: scores_subset "private" (or "all": scored before final scores left out the
    # public subset) with its number of captures, and the public subset's.
    columns += ["scores_subset", "nb_captures", "public_nb_captures"]
    closed = scores.closed_rounds({m.round for m in matches})
    body = []
    for m in matches:
        a = attacks.get(m.id)
        line = [m.round, m.id, m.attacker.name, m.defender.name, m.defence.submission_id, m.defence.utility_score]
        line += [a.submission_id, a.accuracy, a.top5_accuracy, a.roc_auc, _iso(a.created_at)] if a else [None] * 5
        public = (a.public_scores if a else None) or {}
        line += [public.get(name) for name in Attack.SCORE_NAMES] + [m.round in closed]
        line += [*scores.final_subset(a), public.get("nb_captures")] if a else [None] * 3
        body.append(line)
    suffix = f"-round-{number}" if number is not None else ""
    return Table("matches" + suffix, columns, body)


def similarity_table(number: int | None = None) -> Table:
    """The suspicious pairs of uploads of one round (of every generated round when none is given), most
    suspicious first within a round, with their figures and the thresholds they crossed."""
    _check_round(number)
    generated = sorted(db.session.scalars(sa.select(Round.number)))
    numbers = [number] if number is not None else generated
    columns, body = similarity.as_rows({"round": None, "pairs": []})
    for n in numbers:
        if n not in generated:
            continue
        body += similarity.as_rows(similarity.round_similarity(n))[1]
    suffix = f"-round-{number}" if number is not None else ""
    return Table("similarity" + suffix, columns, body)


BUILDERS = {
    "leaderboard": leaderboard_table,
    "submissions": submissions_table,
    "matches": matches_table,
    "similarity": similarity_table,
}


def export(name: str, number: int | None = None, actor: User | str | None = None) -> Table:
    """The table called name (leaderboard, submissions, matches, similarity), of one round when given; ExportError else.

    A staff action, recorded in the audit log (actor: None for whoever makes the request).
    """
    if name not in BUILDERS:
        raise ExportError(f"There is no export {name!r}: choose one of {', '.join(NAMES)}.")
    table = BUILDERS[name](number)
    audit.record_now(actor, "export", None, {"name": name, "round": number, "rows": len(table.rows)}, target=name)
    return table
