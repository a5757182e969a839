"""The figures students look at to improve: where a defence leaks (per-cell recall of the baseline attack, and of
the real attackers once a round closed), each attack's ROC curve and top-k accuracy, and a team's path over the
rounds. The numbers come from app.evaluation.figures; the pictures from app.charts.

Who sees what follows the existing rules: an attack's curves are computed on the captures its shown score counts
(scores.score_view: the public subset while the round is open, the private one after); the real attackers' figures
on a defence appear once the round is closed (scores.closed_rounds), as their final scores do; a team's path is
its leaderboard lines (the public subset for an open round), which every signed-in user sees.
Figures read from stored files are computed once and kept in storage: a closed round's attacks never change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from flask import current_app

from app import charts
from app.evaluation.attack import read_verification
from app.evaluation.figures import FPR_MARKS, CellCounts, attack_curves, cell_counts, grid_shape
from app.extensions import db
from app.models import Attack, BaselineRun, Defence, Match, Submission, SubmissionKind, SubmissionStatus, Team
from app.services import round_sets, scores
from app.services.baseline import for_submission
from app.services.similarity import UNREADABLE, read_upload
from app.services.teams import latest_attacks
from app.storage import StorageError, get_storage, scratch_dir

log = logging.getLogger(__name__)
CACHE_PREFIX = "figures"
NOT_YET = "not available yet"
# What a round's attack and defence parts measure, with the trade-off scoring (True) or without (False).
PART_MEASURES = {
    True: {"attack": "attack score", "defence": "defence score"},
    False: {"attack": "attack performance", "defence": "utility score"},
}
EMPTY_COUNTS = {"captures": None, "recognised": None, "recall": None, "most_exposed": [], "tied_beyond": 0}


def _nb_cells() -> int:
    return current_app.config["NB_CLASSES"]


def _cached(key: str, compute, keep=lambda value: True) -> Any:
    """compute() once, kept as JSON in storage under key (the inputs named by the key never change) when
    keep(value) (a value missing what could not be read is computed again next time)."""
    storage = get_storage()
    key = f"{CACHE_PREFIX}/{key}.json"
    if storage.exists(key):
        with storage.open(key) as stream:
            return json.loads(stream.read())
    value = compute()
    if not keep(value):
        return value
    try:
        with scratch_dir("figures-") as work:
            path = work / "figure.json"
            path.write_text(json.dumps(value))
            storage.save(key, path, move=True)
    except (StorageError, OSError) as exc:  # the figure is shown all the same, and computed again next time
        log.warning("figures: could not keep %s: %s", key, exc)
    return value


def _scored_rows(attack: Attack, match: Match, holder, subset: str) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, true cells) of an attack on its target, on the captures of `subset` (PUBLIC, PRIVATE, or
    ALL), read from the stored upload and the attacker's verification set."""
    submission = db.session.get(Submission, attack.submission_id)
    if submission is None or not submission.file_key:
        raise ValueError("the upload is not stored")
    rows = read_upload(submission.file_key).get(match.defender_team_id)
    if rows is None:
        raise ValueError("the upload has no row for this target")
    capture_ids, proba = rows
    with get_storage().local_path(holder.verification_key) as path:
        ids, cells, public = read_verification(path, match.defender_team_id, _nb_cells())
    slot = np.searchsorted(ids, capture_ids).clip(0, len(ids) - 1)
    if not np.array_equal(ids[slot], capture_ids):
        raise ValueError("the upload's captures are not the verification set's")
    cells = cells[slot]
    if public is not None and subset != scores.ALL:
        keep = public[slot] if subset == scores.PUBLIC else ~public[slot]
        proba, cells = proba[keep], cells[keep]
    return proba, cells


# --- where a defence leaks ------------------------------------------------------------------------------------


@dataclass
class Heatmap:
    """One heat map of a defence: who recognised the cells, on which captures, and the picture."""

    source: str  # "baseline" or "attackers"
    title: str
    counts: CellCounts | None
    note: str
    round: int | None = None
    nb_attackers: int = 0
    subset: str | None = None
    ident: str = ""  # the SVG's id prefix
    problems: list[str] = field(default_factory=list)

    @property
    def svg(self) -> str | None:
        """The picture, drawn when a page asks for it (the API only reads the counts)."""
        if self.counts is None:
            return None
        who = "the baseline attack" if self.source == "baseline" else "the real attackers"
        counts = self.counts
        return charts.heatmap_svg(
            self.ident, self.title, counts.captures, counts.recognised, self.shape, counts.most_exposed(), who
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        return grid_shape(len(self.counts.captures) if self.counts else _nb_cells())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "round": self.round,
            "subset": self.subset,
            "nb_attackers": self.nb_attackers if self.source == "attackers" else None,
            "note": self.note,
            **(self.counts.to_dict() if self.counts else EMPTY_COUNTS),
            "problems": self.problems,
        }


def _baseline_heatmap(run: BaselineRun | None, ident: str) -> Heatmap:
    title = "Where the baseline attack recognised this defence's captures"
    if run is None or run.status is not SubmissionStatus.SUCCEEDED:
        if run is None:
            state = "no baseline attack on this defence"
        elif run.status is SubmissionStatus.FAILED:
            state = "the baseline attack could not run on it"
        else:
            state = "the baseline attack has not finished"
        return Heatmap("baseline", title, None, f"Per-cell figures {NOT_YET}: {state}.")
    counts = CellCounts.from_dict((run.details or {}).get("per_cell"), _nb_cells())
    if counts is None:
        return Heatmap(
            "baseline", title, None, f"Per-cell figures {NOT_YET}: this estimate was computed before they were kept."
        )
    note = f"The baseline attack on this defence's {sum(counts.captures)} test captures (a lower bound on the leakage)."
    return Heatmap("baseline", title, counts, note, ident=ident)


def _attackers_counts(defence: Defence, number: int, matches: list[Match]) -> dict[str, Any]:
    """Pooled per-cell counts of a closed round's counted attacks on a defence, each on the captures its final
    score counts: {captures, recognised, nb_attackers, subset, problems (what could not be read)}."""
    attacks = latest_attacks([m.id for m in matches])
    scored = [m for m in matches if m.id in attacks]
    if not scored:
        return {"captures": None, "recognised": None, "nb_attackers": 0, "subset": None, "problems": []}
    # The counted attacks and the captures each counts name the figures: a rescore that changes either computes anew.
    named = ",".join(f"{attacks[m.id].id}:{scores.final_subset(attacks[m.id])[0]}" for m in scored)
    digest = hashlib.sha256(named.encode()).hexdigest()[:16]

    def compute() -> dict:
        pooled, used, subsets, problems = None, 0, set(), []
        try:
            sets = round_sets.sets_of(scored)
        except round_sets.SetsNotReady as exc:
            sets, problems = {}, [str(exc).rstrip(".")]
        for m in scored:
            attack = attacks[m.id]
            subset, _ = scores.final_subset(attack)
            try:
                proba, cells = _scored_rows(attack, m, sets[m.id], subset)
            except (*UNREADABLE, KeyError) as exc:
                log.warning("figures: attack %s on defence %s unreadable: %s", attack.id, defence.id, exc)
                if sets:
                    problems.append(f"{m.attacker.name}'s attack could not be read")
                continue
            counts = cell_counts(proba, cells, _nb_cells())
            pooled, used = (counts if pooled is None else pooled + counts), used + 1
            subsets.add(subset)
        return {
            "captures": pooled.captures if pooled else None,
            "recognised": pooled.recognised if pooled else None,
            "nb_attackers": used,
            "subset": scores.PRIVATE if scores.PRIVATE in subsets else (subsets.pop() if subsets else None),
            "problems": problems,
        }

    return _cached(f"defence_{defence.id}_round_{number}_{digest}", compute, keep=lambda v: not v["problems"])


def _attackers_heatmaps(defence: Defence, ident: str) -> list[Heatmap]:
    """One heat map per closed round in which the defence was attacked: its attackers' counted attacks pooled."""
    matches = list(
        db.session.scalars(sa.select(Match).where(Match.defence_id == defence.id).order_by(Match.round, Match.id))
    )
    by_round: dict[int, list[Match]] = {}
    for m in matches:
        by_round.setdefault(m.round, []).append(m)
    maps = []
    for number in sorted(scores.closed_rounds(set(by_round)), reverse=True):
        title = f"Round {number}: where the real attackers recognised this defence's captures"
        found = _attackers_counts(defence, number, by_round[number])
        problems = found["problems"]
        counts = CellCounts.from_dict(found, _nb_cells())
        subset = found.get("subset")
        if counts is None:
            if problems:
                note = f"No attack on this defence in round {number} could be read."
            else:
                note = f"No attacker scored against this defence in round {number}."
            maps.append(Heatmap("attackers", title, None, note, round=number, problems=problems))
            continue
        captures = "all captures" if subset == scores.ALL else "the private subset"
        note = (
            f"The {found['nb_attackers']} counted attack(s) of round {number}, pooled, each on the captures its final "
            f"score counts ({captures} of its copy of the test set): {sum(counts.captures)} classifications in all."
        )
        maps.append(
            Heatmap(
                "attackers",
                title,
                counts,
                note,
                round=number,
                nb_attackers=found["nb_attackers"],
                subset=subset,
                ident=f"{ident}-r{number}",
                problems=problems,
            )
        )
    return maps


def defence_heatmaps(submission: Submission) -> list[Heatmap] | None:
    """The heat maps of an accepted defence's submission: the baseline attack's, then the real attackers' of
    each closed round it was attacked in (newest first); None for attacks and refused defences."""
    if submission.kind is not SubmissionKind.DEFENCE:
        return None
    defence = db.session.scalar(sa.select(Defence).where(Defence.submission_id == submission.id))
    if defence is None:
        return None
    ident = f"leak-{submission.id}"
    return [_baseline_heatmap(for_submission(submission), ident), *_attackers_heatmaps(defence, ident)]


def leakage_by_cell(submission: Submission) -> dict[str, Any] | None:
    """The API's `leakage_by_cell` of a submission (see the OpenAPI document)."""
    maps = defence_heatmaps(submission)
    if maps is None:
        return None
    rows, columns = grid_shape(_nb_cells())
    baseline, *attackers = maps
    return {
        "grid": {"rows": rows, "columns": columns, "numbering": "row by row from the top left, from 1"},
        "baseline": baseline.to_dict() if baseline.counts else None,
        "baseline_note": baseline.note,
        "attackers": [m.to_dict() for m in attackers],
    }


# --- an attack's curves ---------------------------------------------------------------------------------------


@dataclass
class TargetCurves:
    team_id: int
    team_name: str | None
    subset: str
    curves: dict[str, Any] | None  # AttackCurves.to_dict(), None when they could not be computed
    problem: str | None = None


def attack_target_curves(submission: Submission, view: scores.ScoreView | None) -> list[TargetCurves]:
    """The curves of an attack on each target whose score the viewer sees (view: scores.score_view), on the same
    captures as that score."""
    if view is None:
        return []
    shown = {r["team_id"]: r for r in view.rows if r.get("roc_auc") is not None and r.get("team_id") is not None}
    if not shown:
        return []
    pairs = db.session.execute(
        sa.select(Attack, Match)
        .join(Match, Match.id == Attack.match_id)
        .where(Attack.submission_id == submission.id, Match.defender_team_id.in_(list(shown)))
        .order_by(Match.defender_team_id)
    ).all()
    if not pairs:
        return []
    try:
        sets = round_sets.sets_of([m for _, m in pairs])
    except round_sets.SetsNotReady:
        sets = {}
    found = []
    for attack, match in pairs:
        row = shown[match.defender_team_id]
        subset = row.get("subset") or view.subset

        def compute(attack=attack, match=match, subset=subset) -> dict:
            proba, cells = _scored_rows(attack, match, sets[match.id], subset)
            return attack_curves(proba, cells).to_dict()

        try:
            curves = _cached(f"attack_{attack.id}_{subset}", compute)
            found.append(TargetCurves(match.defender_team_id, row.get("team_name"), subset, curves))
        except (*UNREADABLE, KeyError) as exc:
            log.warning("figures: curves of attack %s unreadable: %s", attack.id, exc)
            problem = "the stored files could not be read"
            found.append(TargetCurves(match.defender_team_id, row.get("team_name"), subset, None, problem))
    return found


def curves_svgs(submission: Submission, targets: list[TargetCurves]) -> tuple[str | None, str | None]:
    """(ROC chart, top-k chart) of an attack's targets; None without any curve."""
    drawn = [t for t in targets if t.curves]
    if not drawn:
        return None, None
    nb_cells = _nb_cells()
    roc_series = [
        {
            "name": f"{t.team_name or t.team_id}: micro AUC {t.curves['roc']['micro_auc']:.3f}",
            "xs": t.curves["roc"]["fpr"],
            "ys": t.curves["roc"]["tpr"],
        }
        for t in drawn
    ]
    described = "; ".join(
        f"{t.team_name or t.team_id}: micro AUC {t.curves['roc']['micro_auc']:.3f}, true-positive rate "
        + ", ".join(f"{v:.2f} at {k}" for k, v in t.curves["tpr_at_fpr"].items())
        for t in drawn
    )
    on = scores.on_label(drawn[0].subset, scores.subset_label(drawn[0].subset, drawn[0].curves["nb_captures"]))
    roc = charts.line_chart_svg(
        f"roc-{submission.id}",
        "ROC curve (micro-averaged, one cell against the rest)",
        f"ROC curve of the attack {on}, every (capture, cell) pair a yes/no decision scored by the attack's "
        f"probability; the diagonal is guessing (AUC 0.5). {described}.",
        roc_series,
        x_label="False-positive rate",
        y_label="True-positive rate",
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        markers=False,
        diagonal="chance (AUC 0.5)",
        width=460,
        height=460 + 18 * (len(drawn) - 1),
    )
    ks = list(range(1, len(drawn[0].curves["top_k"]) + 1))
    topk_series = [
        {"name": str(t.team_name or t.team_id), "xs": ks[: len(t.curves["top_k"])], "ys": t.curves["top_k"]}
        for t in drawn
    ]
    topk_described = "; ".join(
        f"{t.team_name or t.team_id}: " + ", ".join(f"top-{k} {v:.2f}" for k, v in enumerate(t.curves["top_k"], 1))
        for t in drawn
    )
    topk = charts.line_chart_svg(
        f"topk-{submission.id}",
        "Top-k accuracy",
        f"Share of captures whose true cell is among the attack's k first guesses, k from 1 to {ks[-1]}, {on}; "
        f"guessing reaches k / {nb_cells}. {topk_described}.",
        topk_series,
        x_label="k (guesses allowed)",
        y_label="Top-k accuracy",
        x_range=(0.5, ks[-1] + 0.5),
        y_range=(0.0, 1.0),
        x_ticks=ks,
        reference=(ks, [k / nb_cells for k in ks], "guessing"),
        width=460,
        height=340,
    )
    return roc, topk


def curves_as_api(targets: list[TargetCurves]) -> list[dict[str, Any]]:
    """The API's `curves` of an attack submission."""
    return [
        {"team_id": t.team_id, "team_name": t.team_name, "subset": t.subset, **(t.curves or {}), "problem": t.problem}
        for t in targets
    ]


# --- a team's path over the rounds ----------------------------------------------------------------------------


def team_path(team: Team, boards: dict[int, dict]) -> list[dict[str, Any]]:
    """The team's line in each round's leaderboard (boards: round number -> leaderboard.round_board), oldest first:
    rank (of how many), round score, attack and defence parts, each with the board's 95 % half-width."""
    path = []
    for number in sorted(boards):
        board = boards[number]
        if not board.get("generated"):
            continue
        rows = board["rows"]
        row = next((r for r in rows if r["team_id"] == team.id), None)
        if row is None:
            continue
        tradeoff = board["scoring"] == "tradeoff"
        attack = row.get("attack_score") if tradeoff else row.get("attack_performance")
        attack_pm = row.get("attack_score_pm") if tradeoff else row.get("attack_performance_pm")
        defence = row.get("defence_score") if tradeoff else row.get("utility_score")
        defence_pm = None
        if tradeoff and row.get("leakage_pm") is not None and row.get("cost_factor") is not None:
            defence_pm = row["leakage_pm"] * row["cost_factor"]  # defence score = (1 − leakage) × cost factor
        elif not tradeoff and defence is not None:
            defence_pm = 0.0  # the utility is measured once, exactly
        path.append(
            {
                "round": number,
                "rank": row["rank"],
                "teams": len(rows),
                "score": row.get("score"),
                "score_pm": row.get("score_pm"),
                "attack": attack,
                "attack_pm": attack_pm,
                "defence": defence,
                "defence_pm": defence_pm,
                "public_subset": bool(board.get("public_subset")),
                "scoring": board["scoring"],
            }
        )
    return path


def _interval(value, pm):
    if value is None or pm is None:
        return None, None
    return value - pm, value + pm


def team_path_svgs(team: Team, path: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(round score and rank chart, attack and defence parts chart) of a team's path; None without a round."""
    if not path:
        return None, None
    rounds = [p["round"] for p in path]
    ident = f"path-{team.id}"
    x_range = (rounds[0] - 0.5, rounds[-1] + 0.5)

    def span(values: list[float | None]) -> tuple[float, float]:
        known = [v for v in values if v is not None]
        if not known:
            return 0.0, 1.0
        low, high = min(known + [0.0]), max(known)
        return low, high + (high - low) * 0.15 or 1.0

    score_lows, score_highs = zip(*(_interval(p["score"], p["score_pm"]) for p in path), strict=True)
    scores_line = {
        "name": "Round score (± 95 % interval)",
        "xs": rounds,
        "ys": [p["score"] for p in path],
        "lows": list(score_lows),
        "highs": list(score_highs),
        "labels": [f"rank {p['rank']} of {p['teams']}" for p in path],
    }
    described = "; ".join(
        f"round {p['round']}: score {_fmt(p['score'])}"
        + (f" ± {p['score_pm']:.3g}" if p["score_pm"] is not None else "")
        + f", rank {p['rank']} of {p['teams']}"
        for p in path
    )
    score_chart = charts.line_chart_svg(
        f"{ident}-score",
        f"Team {team.name}: round score and rank",
        f"The team's round score in each round with its 95 % interval, and its rank: {described}.",
        [scores_line],
        x_label="Round",
        y_label="Round score",
        x_range=x_range,
        y_range=span([h for h in score_highs] + [p["score"] for p in path]),
        x_ticks=rounds,
        width=480,
        height=320,
    )
    tradeoff = path[-1]["scoring"] == "tradeoff"
    parts = []
    measured = PART_MEASURES[tradeoff]
    for key, name in (("attack", "Attack part"), ("defence", "Defence part")):
        lows, highs = zip(*(_interval(p[key], p[f"{key}_pm"]) for p in path), strict=True)
        parts.append(
            {
                "name": f"{name} ({measured[key]})",
                "xs": rounds,
                "ys": [p[key] for p in path],
                "lows": list(lows),
                "highs": list(highs),
            }
        )
    parts_described = "; ".join(
        f"round {p['round']}: attack {_fmt(p['attack'])}, defence {_fmt(p['defence'])}" for p in path
    )
    every = [v for line in parts for v in line["ys"] + line["highs"]]
    parts_chart = charts.line_chart_svg(
        f"{ident}-parts",
        f"Team {team.name}: attack and defence parts",
        f"The two parts of the round score in each round, with their 95 % intervals: {parts_described}.",
        parts,
        x_label="Round",
        y_label="Part of the round score",
        x_range=x_range,
        y_range=span(every),
        x_ticks=rounds,
        width=480,
        height=340,
    )
    return score_chart, parts_chart


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.3g}"


__all__ = [
    "FPR_MARKS",
    "Heatmap",
    "TargetCurves",
    "attack_target_curves",
    "curves_as_api",
    "curves_svgs",
    "defence_heatmaps",
    "leakage_by_cell",
    "team_path",
    "team_path_svgs",
]
