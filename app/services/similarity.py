"""The staff's similarity view of a round: pairs of attacks on one target, and pairs of defences in play, that look
copied, with their evidence. Nothing here changes a score: staff read the evidence and judge.

Attacks are compared on the canonical captures of their target: each attacker's capture ids are mapped back to the
pool ids through its verification set (`pool_capture_id`); sets shared by every attacker use the same ids already.
Each upload and each verification set is read once per view; a defence's size-sequence hashes are computed once
and kept in storage (a defence never changes).
"""

from __future__ import annotations

import io
import itertools
import logging
import time
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from app.evaluation import similarity
from app.evaluation.archive import read_single_csv
from app.evaluation.arrays import as_numpy
from app.evaluation.errors import ValidationError
from app.extensions import db
from app.models import Defence, Match, Submission, Team
from app.services import competition, round_sets, rounds
from app.services.teams import latest_attacks
from app.storage import StorageError, get_storage, scratch_dir

log = logging.getLogger(__name__)
# What reading a stored upload, set or hash file can raise: it is named in the view, never a server error.
UNREADABLE = (StorageError, ValidationError, OSError, ValueError, KeyError, zipfile.BadZipFile, pa.ArrowException)

EXAMPLE_SCRIPT_NOTE = (
    "Two teams that both run the course's example attack script unchanged (or on the same features) will look "
    "alike here without having copied each other: read the evidence and judge. Nothing on this page changes a score."
)
HASHES_PREFIX = "similarity/defence_sizes"
# Reading a defence's traces takes about a second (1.5 M packets); a view reads those not read before for at most
# this long, so the first view of a large round stays short; later views find them stored.
DEFENCE_READ_BUDGET_SECONDS = 20


@dataclass
class _Attack:
    team_id: int
    team_name: str
    submission_id: int
    sha256: str
    ids: np.ndarray  # canonical capture ids, ascending
    proba: np.ndarray  # aligned with ids
    cells: np.ndarray  # true cells, aligned with ids


def round_similarity(number: int | None, *, everything: bool = False) -> dict[str, Any]:
    """The round's suspicious pairs, most suspicious first (every compared pair with `everything`); rounds.NoSuchRound
    when the round (default: the current one) was not generated."""
    number = rounds.generated_round(competition.get_state().current_round if number is None else number).number
    matches = list(db.session.scalars(sa.select(Match).where(Match.round == number).order_by(Match.id)))
    teams = {t.id: t.name for t in db.session.scalars(sa.select(Team))}
    attack_pairs, skipped = _attack_pairs(matches, teams)
    defence_pairs = _defence_pairs(sorted({m.defence_id for m in matches}), teams, skipped)
    pairs = sorted(attack_pairs + defence_pairs, key=lambda p: p.pop("_key"))
    compared = len(pairs)
    if not everything:
        pairs = [p for p in pairs if p["suspicious"]]
    return {
        "round": number,
        "pairs": pairs,
        "compared": compared,
        "flagged": sum(p["suspicious"] for p in pairs),
        "skipped": skipped,
        "note": EXAMPLE_SCRIPT_NOTE,
        "thresholds": {name: text for name, text in similarity.THRESHOLD_TEXT.items()},
    }


def _entry(kind: str, a_id: int, b_id: int, teams: dict[int, str], result, **extra) -> dict[str, Any]:
    figures = result.to_dict()
    crossed = figures.pop("thresholds")
    return {
        "kind": kind,
        "team_a_id": a_id,
        "team_a": teams.get(a_id),
        "team_b_id": b_id,
        "team_b": teams.get(b_id),
        **extra,
        "figures": figures,
        "thresholds": crossed,
        "threshold_text": [similarity.THRESHOLD_TEXT[name] for name in crossed],
        "suspicious": bool(crossed),
        "_key": similarity.suspicion_key(result),
    }


def _attack_pairs(matches: list[Match], teams: dict[int, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Pairs of the latest scored attacks on each target."""
    attacks = latest_attacks([m.id for m in matches])
    scored = [m for m in matches if m.id in attacks]
    by_defence: dict[int, list[Match]] = {}
    for m in scored:
        by_defence.setdefault(m.defence_id, []).append(m)
    skipped: list[str] = []
    contested = [m for group in by_defence.values() if len(group) > 1 for m in group]
    if not contested:
        return [], skipped
    try:
        sets = round_sets.sets_of(contested)
    except round_sets.SetsNotReady as exc:
        return [], [str(exc)]
    submissions = {
        s.id: s
        for s in db.session.scalars(
            sa.select(Submission).where(Submission.id.in_({attacks[m.id].submission_id for m in contested}))
        )
    }
    uploads: dict[int, dict[int, tuple[np.ndarray, np.ndarray]] | None] = {}
    pairs = []
    for group in by_defence.values():
        loaded = []
        for m in group:
            found = _load_attack(m, attacks[m.id], submissions, sets, uploads, teams, skipped)
            if found is not None:
                loaded.append(found)
        target = group[0].defender_team_id
        for a, b in itertools.combinations(sorted(loaded, key=lambda x: x.team_id), 2):
            common, pa_, pb_ = similarity.align(a.ids, a.proba, b.ids, b.proba)
            cells = a.cells[np.searchsorted(a.ids, common)]
            result = similarity.compare_attacks(pa_, pb_, cells, sha256_a=a.sha256, sha256_b=b.sha256)
            pairs.append(
                _entry(
                    "attack",
                    a.team_id,
                    b.team_id,
                    teams,
                    result,
                    target_id=target,
                    target=teams.get(target),
                    submission_a=a.submission_id,
                    submission_b=b.submission_id,
                )
            )
    return pairs, skipped


def _load_attack(match, attack, submissions, sets, uploads, teams, skipped) -> _Attack | None:
    submission = submissions.get(attack.submission_id)
    holder = sets.get(match.id)
    name = teams.get(match.attacker_team_id)
    if submission is None or holder is None or not submission.file_key:
        skipped.append(f"{name}'s attack on {teams.get(match.defender_team_id)}: its files are not stored")
        return None
    try:
        if submission.id not in uploads:
            uploads[submission.id] = read_upload(submission.file_key)
        rows = uploads[submission.id].get(match.defender_team_id)
        own_ids, cells, pool_ids = _read_verification(holder.verification_key)
    except UNREADABLE as exc:
        log.warning("similarity: attack %s unreadable: %s", submission.id, exc)
        skipped.append(f"{name}'s attack on {teams.get(match.defender_team_id)}: unreadable ({exc})")
        return None
    if rows is None:
        return None
    ids, proba = rows
    slot = np.searchsorted(own_ids, ids)
    known = (slot < len(own_ids)) & (own_ids[np.minimum(slot, len(own_ids) - 1)] == ids)
    slot, proba = slot[known], proba[known]
    canonical = pool_ids[slot]
    order = np.argsort(canonical)
    return _Attack(
        match.attacker_team_id,
        name,
        submission.id,
        submission.sha256,
        canonical[order],
        proba[order],
        cells[slot][order],
    )


def _csv_of(key: str) -> bytes:
    """The one CSV of a stored zip (an upload already checked, or a set the platform wrote)."""
    with get_storage().local_path(key) as path:
        return read_single_csv(path, f"the stored file {key} is not as the platform wrote it.")


def read_upload(key: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per target team id: (capture ids, probabilities captures × cells, cell c in column c - 1)."""
    table = pacsv.read_csv(io.BytesIO(_csv_of(key)))
    columns = sorted(
        (n for n in table.column_names if n.startswith("proba_class_")), key=lambda n: int(n.rsplit("_", 1)[1])
    )
    team_ids = as_numpy(table.column("team_id")).astype(np.int64)
    capture_ids = as_numpy(table.column("capture_id")).astype(np.int64)
    proba = np.column_stack([as_numpy(table.column(n)).astype(np.float64) for n in columns])
    return {int(t): (capture_ids[team_ids == t], proba[team_ids == t]) for t in np.unique(team_ids)}


def _read_verification(key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the attacker's capture ids ascending, their true cells, their canonical pool ids)."""
    table = pacsv.read_csv(io.BytesIO(_csv_of(key)))
    ids = as_numpy(table.column("capture_id")).astype(np.int64)
    cells = as_numpy(table.column("cell_id")).astype(np.int64)
    pool = (
        as_numpy(table.column("pool_capture_id")).astype(np.int64) if "pool_capture_id" in table.column_names else ids
    )
    order = np.argsort(ids)
    return ids[order], cells[order], pool[order]


def _defence_pairs(defence_ids: list[int], teams: dict[int, str], skipped: list[str]) -> list[dict[str, Any]]:
    """Pairs of the defences in play (of different teams) with the same upload or shared traces."""
    defences = list(db.session.scalars(sa.select(Defence).where(Defence.id.in_(defence_ids)).order_by(Defence.id)))
    hashes: dict[int, np.ndarray] = {}
    started = time.monotonic()
    for d in defences:
        if time.monotonic() - started > DEFENCE_READ_BUDGET_SECONDS and not _hashed(d):
            skipped.append(
                f"{teams.get(d.team_id)}'s defence: its traces are not read yet (a view reads traces for at most "
                f"{DEFENCE_READ_BUDGET_SECONDS} s and keeps what it read): reload in a moment. Identical uploads "
                "are compared anyway."
            )
            continue
        try:
            hashes[d.id] = defence_hashes(d)
        except UNREADABLE as exc:
            log.warning("similarity: defence %s unreadable: %s", d.id, exc)
            skipped.append(f"{teams.get(d.team_id)}'s defence: its traces are unreadable ({exc})")
    pairs = []
    for a, b in itertools.combinations(defences, 2):
        if a.team_id == b.team_id:
            continue
        result = similarity.compare_defences(
            hashes.get(a.id), hashes.get(b.id), sha256_a=a.submission.sha256, sha256_b=b.submission.sha256
        )
        if result.shared_traces is None and not result.identical_file:
            continue
        pairs.append(
            _entry(
                "defence",
                a.team_id,
                b.team_id,
                teams,
                result,
                target_id=None,
                target=None,
                submission_a=a.submission_id,
                submission_b=b.submission_id,
            )
        )
    return pairs


def _hashes_key(defence: Defence) -> str:
    return f"{HASHES_PREFIX}/defence_{defence.id}.npy"


def _hashed(defence: Defence) -> bool:
    return get_storage().exists(_hashes_key(defence))


def defence_hashes(defence: Defence) -> np.ndarray:
    """The size-sequence hashes of every capture of a defence (train and test pool), computed once and stored
    (about a second for the course sample's 1.5 M packets)."""
    storage = get_storage()
    key = _hashes_key(defence)
    if storage.exists(key):
        with storage.open(key) as stream:
            return np.load(io.BytesIO(stream.read()), allow_pickle=False)
    parts = []
    for set_key, keys in ((defence.train_key, ("cell_id", "rep")), (defence.test_key, ("capture_id",))):
        options = pacsv.ConvertOptions(include_columns=[*keys, "direction_size"])
        table = pacsv.read_csv(io.BytesIO(_csv_of(set_key)), convert_options=options)
        capture = as_numpy(table.column(keys[0])).astype(np.int64)
        if len(keys) == 2:
            capture = capture * (1 << 32) + as_numpy(table.column(keys[1])).astype(np.int64)
        parts.append(similarity.size_sequence_hashes(capture, as_numpy(table.column("direction_size"))))
    hashes = np.sort(np.concatenate(parts))
    with scratch_dir("similarity-") as work:
        path = work / "hashes.npy"
        np.save(path, hashes, allow_pickle=False)
        storage.save(key, path, move=True)
    return hashes


def as_rows(view: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The pairs as a flat table (CSV export)."""
    columns = ["round", "kind", "team_a", "team_b", "target", "thresholds", "identical_file", "nb_captures"]
    columns += ["same_top_guess", "both_wrong", "same_wrong_guess", "correlation", "accuracy_a", "accuracy_b"]
    columns += ["shared_traces", "shared_share", "submission_a", "submission_b"]
    rows = []
    for p in view["pairs"]:
        f = p["figures"]
        rows.append(
            [view["round"], p["kind"], p["team_a"], p["team_b"], p.get("target") or ""]
            + [";".join(p["thresholds"]), f["identical_file"], f.get("nb_captures")]
            + [f.get(n) for n in ("same_top_guess", "both_wrong", "same_wrong_guess", "correlation")]
            + [f.get("accuracy_a"), f.get("accuracy_b"), f.get("shared_traces"), f.get("shared_share")]
            + [p["submission_a"], p["submission_b"]]
        )
    return columns, rows
