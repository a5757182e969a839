"""The API described: an OpenAPI 3 document of /api/v1 built with apispec, and a readable page of it.

Every route of the blueprint must have an entry in OPERATIONS (tests/client/test_openapi.py checks the
document against app.url_map and provokes every documented error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from flask import abort, current_app, jsonify, render_template, request

from app.routes.api import bp
from app.routes.api.submission_list import MAX_PER_PAGE
from app.routes.params import MAX_ID

PREFIX = "/api/v1"
ERROR_TEXT = {
    400: "Bad request: the message says which field is wrong.",
    401: "No valid token (or, for POST /tokens, wrong username or password).",
    403: "Not allowed: staff only, or you have no team.",
    404: "No such object (or not your team's).",
    409: "Closed in the current phase, or a round conflict.",
    413: "The file is larger than MAX_UPLOAD_MB.",
    422: "The file failed its checks before queueing (not a zip holding one CSV, empty, unsafe).",
    429: "Too many attempts: wait and try again.",
    507: "The platform is out of storage space: nothing was kept; try again later (the staff are told).",
}


@dataclass
class Operation:
    """One documented operation: its answer on success and every error it can give."""

    summary: str
    ok: int
    schema: str | None
    errors: tuple[int, ...]
    tag: str
    description: str = ""
    query: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (type, description)
    body: str | None = None  # component schema of a JSON body, or "file" for a multipart upload
    auth: str = "bearer"  # "bearer", "basic" or "none"
    ok_media: str = "application/json"


def _schemas() -> dict[str, dict[str, Any]]:
    def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": required or list(props)}

    s, i, n, b = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
    null = {"nullable": True}
    submission = {
        "id": i,
        "kind": {"type": "string", "enum": ["defence", "attack"]},
        "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
        "progress": {**s, **null},
        "error": {**s, **null},
        "results": {
            "type": "object",
            **null,
            "description": "checks, utility, overheads (percent, with per_cell) or scores, when finished; a "
            "defence's already while it is `running` once every check has passed (final then: the status turns to "
            "`succeeded` when its sets are stored; a failure afterwards replaces them with its reason). For an "
            "attack, `scores` are on each test set's public subset while the round is open (`scores_subset` "
            '"public") and the final scores once it closed, on the private subset (`scores_subset` "private"; '
            '"all" for attacks scored before final scores left out the public subset), with `public_scores` '
            "beside them; `scores_note` says which captures they count, each score row's `subset` and "
            "`nb_captures` too. Staff also get `private_scores` and `private_scores_note` while the round is open",
        },
        "created_at": {**s, "format": "date-time"},
        "finished_at": {**s, "format": "date-time", **null},
        "original_filename": {**s, **null},
        "size": {**i, **null},
        "sha256": {**s, **null},
        "round": i,
        "baseline": {
            "type": "object",
            **null,
            "description": "an accepted defence's privacy estimate: the platform's baseline attack on its own sets "
            "(a lower bound: real attackers may do better); null for attacks and refused defences",
            "properties": {
                "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
                "accuracy": {**n, **null},
                "top5_accuracy": {**n, **null},
                "roc_auc": {**n, **null},
                "intervals": {"type": "object", **null, "description": "95 % bootstrap intervals per score"},
                "nb_test_captures": {**i, **null},
                "seconds": {**n, **null},
                "finished_at": {**s, "format": "date-time", **null},
                "lower_bound": b,
            },
        },
    }
    counts = {"type": "array", "items": {**i, "minimum": 0}}
    heatmap = {
        "source": {"type": "string", "enum": ["baseline", "attackers"]},
        "round": {**i, **null, "description": "attackers: the closed round; null for the baseline"},
        "subset": {
            "type": "string",
            "enum": ["private", "all"],
            **null,
            "description": "attackers: which captures their final scores (and these counts) count",
        },
        "nb_attackers": {**i, **null, "description": "attackers: how many counted attacks are pooled"},
        "note": {**s, "description": "what the figures count, in words"},
        "captures": {
            **counts,
            **null,
            "description": "per cell (cell c at index c − 1): its scored captures; null when no attack was read",
        },
        "recognised": {**counts, **null, "description": "per cell: how many of them the top guess named"},
        "recall": {
            "type": "array",
            **null,
            "items": {**n, **null},
            "description": "per cell: recognised / captures (null for a cell without captures)",
        },
        "problems": {"type": "array", "items": s, "description": "attackers: the attacks that could not be read"},
        "most_exposed": {
            "type": "array",
            "items": i,
            "description": "the five cells with the highest recall (then the most captures, then the lowest number)",
        },
        "tied_beyond": {**i, "description": "how many more cells share the recall of the last one named"},
    }
    submission["leakage_by_cell"] = {
        "type": "object",
        **null,
        "description": "only in GET /submissions/{id}, for an accepted defence (null otherwise): where it leaks, "
        "cell by cell of the grid. `baseline`: the platform's baseline attack on its test set (null while it "
        "runs, or for estimates computed before per-cell figures were kept: `baseline_note` says which); "
        "`attackers`: per closed round in which the defence was attacked (newest first), the real attackers' "
        "counted attacks pooled, on the captures their final scores count",
        "properties": {
            "grid": obj({"rows": i, "columns": i, "numbering": s}),
            "baseline": {**obj(heatmap), **null},
            "baseline_note": s,
            "attackers": {"type": "array", "items": obj(heatmap)},
        },
        "required": ["grid", "baseline", "baseline_note", "attackers"],
    }
    submission["curves"] = {
        "type": "array",
        **null,
        "description": "only in GET /submissions/{id}, for an attack (null otherwise): per target whose score you "
        "may see, the micro-averaged one-vs-rest ROC curve (downsampled), its area, the true-positive rate at a "
        "few false-positive rates and the top-k accuracies (k = 1..10), on the same captures as that score "
        "(`subset`); `problem` says why a target's curves are missing",
        "items": obj(
            {
                "team_id": i,
                "team_name": {**s, **null},
                "subset": {"type": "string", "enum": ["public", "private", "all"]},
                "nb_captures": i,
                "roc": obj(
                    {
                        "fpr": {"type": "array", "items": n},
                        "tpr": {"type": "array", "items": n},
                        "micro_auc": n,
                    }
                ),
                "tpr_at_fpr": {
                    "type": "object",
                    "additionalProperties": n,
                    "description": 'false-positive rate ("0.01") -> true-positive rate there',
                },
                "top_k": {"type": "array", "items": n, "description": "top-k accuracy, k = 1, 2, ..."},
                "problem": {**s, **null},
            },
            ["team_id", "team_name", "subset", "problem"],
        ),
    }
    row = {
        "rank": i,
        "team_id": i,
        "team_name": s,
        "utility_score": {**n, **null},
        "attack_performance": {**n, **null},
        "score": {**n, **null, "description": "the round score of the LEADERBOARD_SCORING mode"},
        "attack_performance_pm": {**n, **null, "description": "± half-width of an approximate 95 % interval"},
        "privacy_leakage_pm": {**n, **null, "description": "± half-width of an approximate 95 % interval"},
        "baseline_roc_auc": {**n, **null, "description": "the baseline attack's ROC-AUC on the team's defence"},
        "baseline_accuracy": {**n, **null, "description": "the baseline attack's accuracy on the team's defence"},
        "score_pm": {**n, **null, "description": "± half-width of an approximate 95 % interval of the score"},
        "tied_with_above": {
            **b,
            "description": "the score's interval overlaps the one of the team ranked just above: statistically "
            "tied (ranks still follow the scores)",
        },
        "attack_score": {
            **n,
            **null,
            "minimum": 0,
            "maximum": 1,
            "description": "tradeoff mode: mean advantage (accuracy − 1/C) / (1 − 1/C) over the team's matches",
        },
        "attack_score_pm": {**n, **null},
        "defence_score": {**n, **null, "description": "tradeoff mode: (1 − leakage) × cost factor"},
        "leakage": {
            **n,
            **null,
            "minimum": 0,
            "maximum": 1,
            "description": "tradeoff mode: best attacker's accuracy advantage (else the baseline's)",
        },
        "tie_break": {**n, **null, "description": "tradeoff mode: the round score on top-5 accuracies"},
        "leakage_pm": {**n, **null},
        "leakage_source": {"type": "string", "enum": ["attackers", "baseline"], **null},
        "cost_factor": {**n, **null, "description": "tradeoff mode: 1 / (1 + bandwidth + time overheads)"},
    }
    return {
        "Error": obj({"error": {**s, "description": "short code"}, "message": {**s, "description": "what to do"}}),
        "Token": obj({"token": s, "expires_at": {**s, "format": "date-time"}}),
        "Me": obj(
            {
                "username": s,
                "is_admin": b,
                "team_id": {**i, **null},
                "team_name": {**s, **null},
                "team_join_code": {**s, **null, "description": "your team's join code (null without a team)"},
                "uploads_left": obj(
                    {
                        kind: {
                            **i,
                            **null,
                            "description": f"{kind} uploads your team may still make in the rolling "
                            "24 hours (failed ones do not count); null when unlimited (no quota, or staff)",
                        }
                        for kind in ("defence", "attack")
                    }
                ),
            }
        ),
        "Competition": obj(
            {
                "round": i,
                "phase": {"type": "string", "enum": ["Defence", "Attack", "Both", "None"]},
                "registration_open": b,
                "nb_classes": i,
                "nb_traces_to_classify": i,
                "defence_settings": {"$ref": "#/components/schemas/DefenceSettings"},
            }
        ),
        "DefenceSettings": {
            **obj(
                {
                    "nb_classes": {**i, "description": "grid cells (classes): cell_id runs from 1 to this"},
                    "mean_nb_rep_per_class": {**i, "description": "captures per cell must be within mean ± deviation"},
                    "deviation_nb_rep_per_class": i,
                    "rows_per_capture": {**i, "description": "a capture needs more rows than this"},
                    "nb_traces_to_classify": {**i, "description": "captures in each defence's test set"},
                    "columns": {"type": "array", "items": s, "description": "columns of a defence CSV (any order)"},
                    "max_uncompressed_bytes": {**i, "description": "most bytes the CSV may decompress to"},
                    "max_rows": {**i, "description": "most rows (packets) a defence may hold"},
                    "plausible_min_bytes_ratio": {
                        **n,
                        "description": "plausibility: least share of the reference's median bytes per cell",
                    },
                    "plausible_min_time_ratio": {
                        **n,
                        "description": "plausibility: least share of the reference's median duration per cell",
                    },
                    "min_packet_bytes": {**i, "description": "plausibility: at most 1 % of packets may be smaller"},
                    "public_score_fraction": {
                        **n,
                        "description": "share of each test set scored apart and shown while a round is open",
                    },
                }
            ),
            "description": "What the worker checks a defence against (`srs validate defence --settings` reads it).",
        },
        "CompetitionChange": {
            "type": "object",
            "properties": {
                "phase": {"type": "string", "enum": ["Defence", "Attack", "Both", "None"]},
                "registration_open": b,
            },
            "minProperties": 1,
            "description": "either or both",
        },
        "RoundRequest": obj({"round": i}),
        "Match": obj({"id": i, "round": i, "attacker_team_id": i, "defender_team_id": i}),
        "Matches": {"type": "array", "items": {"$ref": "#/components/schemas/Match"}},
        "Round": obj({"round": i, "matches": {"$ref": "#/components/schemas/Matches"}}),
        "ClosedRound": obj({"round": i, "closed_at": {**s, "format": "date-time"}}),
        "Accepted": obj({"submission_id": i, "status_url": {**s, "format": "uri"}}),
        "Submission": obj(submission, [k for k in submission if k not in ("leakage_by_cell", "curves")]),
        "SubmissionList": obj(
            {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Submission"}},
                "page": i,
                "per_page": i,
                "total": i,
                "pages": i,
            }
        ),
        "Leaderboard": obj(
            {
                "round": i,
                "scoring": {"type": "string", "enum": ["original", "tradeoff"]},
                "generated": {**b, "description": "false before the round's matches exist: a preview"},
                "public_subset": b,
                "scores_subset": {
                    "type": "string",
                    "enum": ["public", "private", "all"],
                    **null,
                    "description": "which captures the attack scores count: the public subset while the round is "
                    "open, the private subset (the final ranks) once closed; all captures for attacks scored "
                    "before final scores left out the public subset; null before the round is generated",
                },
                "scores_note": {**s, **null, "description": 'the same in words: "private subset (200 captures)"'},
                "rows": {"type": "array", "items": obj(row, list(row)[:3])},
            }
        ),
        "ScheduledAction": obj(
            {
                "id": i,
                "action": {"type": "string", "enum": ["phase", "registration", "round"]},
                "value": s,
                "label": s,
                "due_at": {**s, "format": "date-time"},
                "created_by": s,
                "applied_at": {**s, "format": "date-time", **null},
                "outcome": {**s, **null},
            }
        ),
        "Schedule": obj(
            {
                "pending": {"type": "array", "items": {"$ref": "#/components/schemas/ScheduledAction"}},
                "applied": {"type": "array", "items": {"$ref": "#/components/schemas/ScheduledAction"}},
            }
        ),
        "ScheduleRequest": {
            "description": "a phase change (value: a phase name), registration opening or closing (value: `open` "
            "or `closed`), or the next round (no value); due_at is when (UTC unless an offset is given)",
            "oneOf": [
                obj(
                    {
                        "action": {"type": "string", "enum": [action]},
                        "value": {"type": "string", "enum": values},
                        "due_at": {**s, "format": "date-time"},
                    }
                )
                for action, values in (
                    ("phase", ["Defence", "Attack", "Both", "None"]),
                    ("registration", ["open", "closed"]),
                )
            ]
            + [obj({"action": {"type": "string", "enum": ["round"]}, "due_at": {**s, "format": "date-time"}})],
        },
        "Export": obj(
            {
                "name": s,
                "columns": {"type": "array", "items": s},
                "rows": {"type": "array", "items": {"type": "object"}},
            }
        ),
        "Similarity": obj(
            {
                "round": i,
                "compared": i,
                "flagged": i,
                "note": s,
                "skipped": {"type": "array", "items": s},
                "thresholds": {"type": "object", "additionalProperties": s},
                "pairs": {
                    "type": "array",
                    "items": obj(
                        {
                            "kind": {"type": "string", "enum": ["attack", "defence"]},
                            "team_a": s,
                            "team_a_id": i,
                            "team_b": s,
                            "team_b_id": i,
                            "target": {**s, **null},
                            "target_id": {**i, **null},
                            "figures": {"type": "object"},
                            "thresholds": {"type": "array", "items": s},
                            "threshold_text": {"type": "array", "items": s},
                            "suspicious": {"type": "boolean"},
                            "submission_a": i,
                            "submission_b": i,
                        },
                        ["kind", "team_a", "team_a_id", "team_b", "team_b_id", "figures", "thresholds", "suspicious"],
                    ),
                },
            }
        ),
        "OverallLeaderboard": obj(
            {
                "aggregation": {"type": "string", "enum": ["sum", "mean", "best"]},
                "scoring": {"type": "string", "enum": ["original", "tradeoff"]},
                "rounds": {"type": "array", "items": i},
                "public_subset_rounds": {"type": "array", "items": i, "description": "rounds still open"},
                "rows": {
                    "type": "array",
                    "items": obj(
                        {
                            "rank": i,
                            "team_id": i,
                            "team_name": s,
                            "score": {**n, **null},
                            "rounds_played": i,
                            "rounds_scored": i,
                            "round_scores": {
                                "type": "object",
                                "additionalProperties": {**n, **null},
                                "description": "round number (as a string) -> that round's score",
                            },
                            "score_pm": {**n, **null, "description": "± half-width of an approximate 95 % interval"},
                            "tied_with_above": {
                                **b,
                                "description": "the score's interval overlaps the one of the team ranked just above",
                            },
                        }
                    ),
                },
            },
            ["aggregation", "scoring", "rounds", "rows"],
        ),
    }


UPLOAD_ERRORS = (400, 401, 403, 409, 413, 422, 429, 507)  # 429: the team used its daily quota (Retry-After)
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("api.create_token", "post"): Operation(
        "Get a token for your username and password (HTTP Basic)",
        201,
        "Token",
        (401, 429),
        "auth",
        "Tokens last API_TOKEN_HOURS. Attempts are rate-limited per account and per address.",
        auth="basic",
    ),
    ("api.revoke_token", "delete"): Operation("Revoke the token used for this call", 204, None, (401,), "auth"),
    ("api.me", "get"): Operation("Who you are, and your team", 200, "Me", (401,), "competition"),
    ("api.get_competition", "get"): Operation(
        "The round, the phase and the settings", 200, "Competition", (401,), "competition"
    ),
    ("api.put_competition", "put"): Operation(
        "Change the phase or registration (staff)",
        200,
        "Competition",
        (400, 401, 403),
        "competition",
        body="CompetitionChange",
    ),
    ("api.post_round", "post"): Operation(
        "Generate the next round's matches (staff)",
        201,
        "Round",
        (400, 401, 403, 409),
        "rounds",
        "Rounds go in order and are never generated twice (409).",
        body="RoundRequest",
    ),
    ("api.close_round", "post"): Operation(
        "Close a round: publish its final scores, on the private subset (staff)",
        200,
        "ClosedRound",
        (401, 403, 404, 409),
        "rounds",
        "While a round is open, attack scores are shown on each test set's public subset only; closing it "
        "publishes the final scores (on the private subset of each test set) and mails them to its teams. "
        "409 when it is already closed.",
    ),
    ("api.get_matches", "get"): Operation(
        "A round's matches",
        200,
        "Matches",
        (401,),
        "rounds",
        query={"round": ("integer", "the round (default: the current one)")},
    ),
    ("api.get_attack_sets", "get"): Operation(
        "Your targets' train and test sets (the current round), as one zip",
        200,
        None,
        (401, 403, 404, 409),
        "attacks",
        "A zip holding team_ID_train.csv.zip and team_ID_test.csv.zip per target; 409 outside the attack phase.",
        ok_media="application/zip",
    ),
    ("api.post_attack", "post"): Operation(
        "Upload an attack (multipart field `file`)",
        202,
        "Accepted",
        UPLOAD_ERRORS,
        "attacks",
        "A zip holding one CSV team_id,capture_id,proba_class_1..N. Follow it with the status URL.",
        body="file",
    ),
    ("api.post_defence", "post"): Operation(
        "Upload a defence (multipart field `file`)",
        202,
        "Accepted",
        UPLOAD_ERRORS,
        "defences",
        "A zip holding one CSV cell_id,rep,direction_size,timestamp. Follow it with the status URL.",
        body="file",
    ),
    ("api.list_submissions", "get"): Operation(
        "Your team's submissions, newest first",
        200,
        "SubmissionList",
        (400, 401),
        "submissions",
        query={"page": ("integer", "page, from 1"), "per_page": ("integer", "items per page, 1 to 100 (20)")},
    ),
    ("api.get_submission", "get"): Operation(
        "One submission's status, checks and results", 200, "Submission", (401, 404), "submissions"
    ),
    ("api.get_leaderboard", "get"): Operation(
        "One round's leaderboard",
        200,
        "Leaderboard",
        (401, 404),
        "leaderboard",
        query={"round": ("integer", "the round (default: the current one)")},
    ),
    ("api.get_overall_leaderboard", "get"): Operation(
        "All rounds combined (LEADERBOARD_AGGREGATION)", 200, "OverallLeaderboard", (401,), "leaderboard"
    ),
    ("api.get_schedule", "get"): Operation(
        "The timeline: pending actions (soonest first) and applied ones (staff)", 200, "Schedule", (401, 403), "staff"
    ),
    ("api.post_schedule", "post"): Operation(
        "Plan a phase change, registration change or round generation at a time (staff)",
        201,
        "ScheduledAction",
        (400, 401, 403),
        "staff",
        "The scheduler applies it within a minute of its time, exactly once (late, with a note, after downtime).",
        body="ScheduleRequest",
    ),
    ("api.delete_schedule", "delete"): Operation(
        "Remove a pending action (staff)", 204, None, (401, 403, 404, 409), "staff", "409 once it was applied."
    ),
    ("api.get_export", "get"): Operation(
        "A staff export as JSON: `leaderboard`, `submissions`, `matches` or `similarity` (admin token)",
        200,
        "Export",
        (401, 403, 404),
        "staff",
        "The same tables as the dashboard's CSV downloads. Needs a bearer token, not a browser session.",
        query={"round": ("integer", "one round only (default: all; the overall leaderboard)")},
    ),
    ("api.get_similarity", "get"): Operation(
        "A round's suspicious pairs of uploads, with their evidence (staff)",
        200,
        "Similarity",
        (400, 401, 403, 404),
        "staff",
        "Attacks on the same target compared on the target's canonical captures (same top guess, same wrong "
        "guesses, correlation of the probabilities, byte-identical files) and defences in play compared by "
        "SHA-256 and packet-size sequences; each pair names both teams, the target, its figures and the "
        "thresholds it crossed, most suspicious first. Evidence for staff to judge: nothing changes a score.",
        query={
            "round": ("integer", "the round (default: the current one)"),
            "all": ("string", "`1`: every pair compared, not only those that crossed a threshold"),
        },
    ),
    ("api.openapi_document", "get"): Operation("This document", 200, None, (), "meta", auth="none"),
    ("api.docs_page", "get"): Operation(
        "This document as a page", 200, None, (), "meta", auth="none", ok_media="text/html"
    ),
}


def openapi_path(rule: str) -> str:
    """/api/v1/submissions/<int:submission_id> -> /submissions/{submission_id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule[len(PREFIX) :])


def api_rules(app) -> list[tuple[str, str, Any]]:
    """(endpoint, method, rule) of every route under /api/v1, HEAD and OPTIONS left out."""
    return sorted(
        (rule.endpoint, method.lower(), rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


# The ranges app.routes.params.query_int enforces, by query parameter.
QUERY_RANGES = {"round": (0, MAX_ID), "page": (1, MAX_ID), "per_page": (1, MAX_PER_PAGE)}


def _query_schema(name: str, kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer" and name in QUERY_RANGES:
        schema["minimum"], schema["maximum"] = QUERY_RANGES[name]
    return schema


def _operation(endpoint: str, op: Operation, rule) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}
        for name in rule.arguments
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": _query_schema(name, kind), "description": text}
        for name, (kind, text) in op.query.items()
    ]
    responses: dict[str, Any] = {}
    if op.ok == 204:
        responses["204"] = {"description": "Done; no content."}
    else:
        content = {"schema": {"$ref": f"#/components/schemas/{op.schema}"}} if op.schema else {}
        if op.ok_media == "application/zip":
            content = {"schema": {"type": "string", "format": "binary"}}
        responses[str(op.ok)] = {"description": "Success.", "content": {op.ok_media: content}}
    for status in sorted({*op.errors, *((400,) if op.query else ())}):  # query_int refuses a bad query with 400
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    doc: dict[str, Any] = {
        "operationId": endpoint.removeprefix("api."),
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        doc["description"] = op.description
    if params:
        doc["parameters"] = params
    if op.auth == "none":
        doc["security"] = []
    elif op.auth == "basic":
        doc["security"] = [{"basic": []}]
    if op.body == "file":
        doc["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                }
            },
        }
    elif op.body:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body}"}}},
        }
    return doc


def build_spec(app) -> APISpec:
    """The OpenAPI 3 document of the app's /api/v1 routes; KeyError names a route missing from OPERATIONS."""
    spec = APISpec(
        title="Secret Race Strolling API",
        version="1",
        openapi_version="3.0.3",
        info={
            "description": "JSON API of the platform. Get a token with POST /tokens (HTTP Basic), then send "
            "`Authorization: Bearer <token>`. Errors are JSON {error, message}."
        },
        servers=[{"url": PREFIX}],
        security=[{"bearer": []}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    for name, schema in _schemas().items():
        spec.components.schema(name, schema)
    for status, text in ERROR_TEXT.items():
        spec.components.response(
            f"E{status}",
            {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint, method, rule in api_rules(app):
        op = OPERATIONS.get((endpoint, method))
        if op is None:
            raise KeyError(f"{method.upper()} {rule.rule} ({endpoint}) is not described in {__name__}.OPERATIONS")
        paths.setdefault(openapi_path(rule.rule), {})[method] = _operation(endpoint, op, rule)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3 document of this API."""
    return jsonify(build_spec(current_app).to_dict())


@bp.get("/docs")
def docs_page():
    """The API described, as a page."""
    return render_template("api/docs.html", spec=build_spec(current_app).to_dict(), prefix=PREFIX)


@bp.before_request
def refuse_undocumented_query():
    """A query parameter the document does not list is refused (400), so a typo (`?rund=2`) is not silently
    answered with the default."""
    op = OPERATIONS.get((request.endpoint, request.method.lower()))
    unknown = sorted(set(request.args) - set(op.query)) if op else []
    if unknown:
        takes = ", ".join(op.query) if op.query else "no query parameter"
        abort(400, f"Unknown query parameter {unknown[0][:40]!r}: this call takes {takes}.")
