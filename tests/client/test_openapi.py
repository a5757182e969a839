"""The OpenAPI document matches the registered routes, and every error it documents is the one the API gives."""

from __future__ import annotations

import errno
import io
import re
import zipfile
from contextlib import contextmanager
from datetime import datetime

from app import storage as storage_module
from app.models import Phase, SubmissionKind
from app.routes.api.openapi import OPERATIONS, api_rules, build_spec, openapi_path
from app.services import competition, schedule
from tests import factories


def _document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_every_route_and_method_is_described_and_nothing_else(app, client):
    spec = _document(client)
    assert spec["openapi"].startswith("3.")
    registered = {(openapi_path(rule.rule), method) for _, method, rule in api_rules(app)}
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert registered == described
    assert {(e, m) for e, m, _ in api_rules(app)} == set(OPERATIONS)
    for path, ops in spec["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for op in ops.values():
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == names
            for ref in re.findall(r"'\$ref': '#/components/(\w+)/(\w+)'", str(op)):
                assert ref[1] in spec["components"][ref[0]], ref


def test_me_answers_the_fields_its_schema_describes(app, client):
    me_schema = _document(client)["components"]["schemas"]["Me"]
    alice = factories.make_user("alice", team="al-bo")
    me = client.get("/api/v1/me", headers=factories.api_token(alice)).get_json()
    assert set(me) == set(me_schema["properties"])
    left = me_schema["properties"]["uploads_left"]
    assert set(me["uploads_left"]) == set(left["properties"]) == {"defence", "attack"}
    assert all(p["type"] == "integer" and p["nullable"] for p in left["properties"].values())


def test_a_new_undescribed_route_breaks_the_document(app):
    from flask import Flask

    bare = Flask(__name__)
    bare.add_url_rule("/api/v1/secret", "api.secret", lambda: "")
    try:
        build_spec(bare)
    except KeyError as exc:
        assert "/api/v1/secret" in str(exc)
    else:
        raise AssertionError("an undescribed route went unnoticed")


@contextmanager
def _no_space_left():
    """The upload folder's file system answers as a full one does (tests/web/test_disk_full.py fills a real one)."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    saved, storage_module.shutil.move = storage_module.shutil.move, full
    try:
        yield
    finally:
        storage_module.shutil.move = saved


def _small_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("x.csv", "a,b\n1,2\n")
    return out.getvalue()


def _provoke(app, client) -> dict[tuple[str, str], set[int]]:
    """Make every API operation fail in every way we know; the statuses it answered, by (endpoint, method)."""
    alice = factories.make_user("alice", team="al-bo")
    nomad = factories.make_user("nomad")  # no team
    admin = factories.make_user("boss", admin=True)
    h_alice, h_nomad, h_admin = (factories.api_token(u) for u in (alice, nomad, admin))
    seen: dict[tuple[str, str], set[int]] = {}

    def hit(key, method, url, **kwargs):
        response = client.open(url, method=method, **kwargs)
        if response.status_code >= 400:
            body = response.get_json()
            assert set(body) == {"error", "message"} and body["message"], (url, body)
            seen.setdefault(key, set()).add(response.status_code)
        return response

    for endpoint, method, rule in api_rules(app):
        if OPERATIONS[(endpoint, method)].auth == "bearer":
            url = re.sub(r"<[^>]+>", "1", rule.rule)
            assert hit((endpoint, method), method, url).status_code == 401, url

    def upload(key, url, headers, data=b"PK\x03\x04 not a zip"):
        return hit(key, "POST", url, headers=headers, data={"file": (io.BytesIO(data), "x.zip")})

    hit(("api.create_token", "post"), "POST", "/api/v1/tokens", auth=("alice", "wrong"))
    for _ in range(30):
        if hit(("api.create_token", "post"), "POST", "/api/v1/tokens", auth=("alice", "wrong")).status_code == 429:
            break
    hit(("api.put_competition", "put"), "PUT", "/api/v1/competition", headers=h_admin, json={})
    hit(("api.put_competition", "put"), "PUT", "/api/v1/competition", headers=h_alice, json={"phase": "Both"})
    hit(("api.post_round", "post"), "POST", "/api/v1/rounds", headers=h_admin, json={})
    hit(("api.post_round", "post"), "POST", "/api/v1/rounds", headers=h_alice, json={"round": 1})
    hit(("api.post_round", "post"), "POST", "/api/v1/rounds", headers=h_admin, json={"round": 5})
    hit(("api.list_submissions", "get"), "GET", "/api/v1/submissions?per_page=1000", headers=h_alice)
    hit(("api.get_submission", "get"), "GET", "/api/v1/submissions/999", headers=h_alice)
    hit(("api.get_leaderboard", "get"), "GET", "/api/v1/leaderboard?round=99", headers=h_alice)
    for query_key, url in (
        (("api.get_leaderboard", "get"), "/api/v1/leaderboard?round=two"),
        (("api.get_matches", "get"), "/api/v1/matches?round=null"),
        (("api.list_submissions", "get"), "/api/v1/submissions?per_page=null"),
        (("api.get_export", "get"), "/api/v1/admin/exports/matches?round=1.5"),
    ):
        hit(query_key, "GET", url, headers=h_admin)  # 400: not a whole number
    plan = {"action": "phase", "value": "Attack", "due_at": "2030-01-01T00:00:00Z"}
    hit(("api.get_schedule", "get"), "GET", "/api/v1/schedule", headers=h_alice)  # 403
    hit(("api.post_schedule", "post"), "POST", "/api/v1/schedule", headers=h_alice, json=plan)  # 403
    hit(("api.post_schedule", "post"), "POST", "/api/v1/schedule", headers=h_admin, json={})  # 400
    hit(("api.delete_schedule", "delete"), "DELETE", "/api/v1/schedule/1", headers=h_alice)  # 403
    hit(("api.delete_schedule", "delete"), "DELETE", "/api/v1/schedule/999", headers=h_admin)  # 404
    applied = schedule.add("phase", "None", datetime(2020, 1, 1))
    schedule.apply_due()
    hit(("api.delete_schedule", "delete"), "DELETE", f"/api/v1/schedule/{applied.id}", headers=h_admin)  # 409
    export = ("api.get_export", "get")
    hit(export, "GET", "/api/v1/admin/exports/matches", headers=h_alice)  # 403
    hit(export, "GET", "/api/v1/admin/exports/nothing", headers=h_admin)  # 404
    similar = ("api.get_similarity", "get")
    hit(similar, "GET", "/api/v1/admin/similarity?round=1", headers=h_alice)  # 403
    hit(similar, "GET", "/api/v1/admin/similarity?round=9", headers=h_admin)  # 404
    hit(similar, "GET", "/api/v1/admin/similarity?round=first", headers=h_admin)  # 400

    sets = ("api.get_attack_sets", "get")
    hit(sets, "GET", "/api/v1/attack/sets", headers=h_alice)  # phase None: 409
    competition.update_state(phase=Phase.ATTACK)
    hit(sets, "GET", "/api/v1/attack/sets", headers=h_nomad)  # no team: 403
    hit(sets, "GET", "/api/v1/attack/sets", headers=h_alice)  # no target: 404
    factories.make_round(1, [(alice.team, factories.make_team("cha-di"))])  # alice has a target from now on
    for kind, url in (("api.post_defence", "/api/v1/defences"), ("api.post_attack", "/api/v1/attacks")):
        key = (kind, "post")
        competition.update_state(phase=Phase.NONE)
        upload(key, url, h_alice)  # 409
        competition.update_state(phase=Phase.BOTH)
        upload(key, url, h_nomad)  # 403
        hit(key, "POST", url, headers=h_alice, data={})  # 400
        upload(key, url, h_alice)  # 422
        app.config["MAX_CONTENT_LENGTH"] = 1000
        try:
            upload(key, url, h_alice, data=b"x" * 5000)  # 413
        finally:
            app.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024
        with _no_space_left():
            upload(key, url, h_alice, data=_small_zip())  # 507
        quota = "DEFENCE_UPLOADS_PER_DAY" if kind == "api.post_defence" else "ATTACK_UPLOADS_PER_DAY"
        kind_of = SubmissionKind.DEFENCE if kind == "api.post_defence" else SubmissionKind.ATTACK
        factories.make_submission(alice.team, alice, kind=kind_of)
        app.config[quota], saved = 1, app.config[quota]
        try:
            upload(key, url, h_alice)  # 429: the day's quota is used
        finally:
            app.config[quota] = saved
    close = ("api.close_round", "post")
    hit(close, "POST", "/api/v1/rounds/1/close", headers=h_alice)  # 403
    hit(close, "POST", "/api/v1/rounds/9/close", headers=h_admin)  # 404
    hit(close, "POST", "/api/v1/rounds/1/close", headers=h_admin)
    hit(close, "POST", "/api/v1/rounds/1/close", headers=h_admin)  # already closed: 409
    export = ("api.get_export", "get")
    hit(export, "GET", "/api/v1/admin/exports/matches", headers=h_alice)  # 403
    hit(export, "GET", "/api/v1/admin/exports/nothing", headers=h_admin)  # 404
    return seen


def test_documented_errors_are_exactly_those_the_api_gives(app, client):
    spec = _document(client)
    seen = _provoke(app, client)
    for (endpoint, method), rule in {(e, m): r for e, m, r in api_rules(app)}.items():
        op = spec["paths"][openapi_path(rule.rule)][method]
        documented = {int(s) for s in op["responses"] if int(s) >= 400}
        assert seen.get((endpoint, method), set()) == documented, f"{method.upper()} {rule.rule}"
        for status in documented:
            assert op["responses"][str(status)] == {"$ref": f"#/components/responses/E{status}"}


def test_docs_page_lists_every_operation_without_outside_resources_and_is_linked(app, client):
    spec = _document(client)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert f"{method.upper()} /api/v1{path}" in html
            for status in op["responses"]:
                assert f"<td>{status}</td>" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "the page must work offline (no CDN)"
    assert 'href="/api/v1/docs"' in client.get("/login").get_data(as_text=True)
