"""Session key, login limits, proxies, timing and security headers."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from app import create_app
from app.extensions import db, limiter
from app.models import Phase, SubmissionKind, SubmissionStatus
from app.security import CONTENT_SECURITY_POLICY
from app.services import accounts, competition
from config import DEFAULT_SECRET_KEY
from tests import factories
from tests.conftest import create_schema
from tests.factories import make_user

ENV_EXAMPLE_KEY = "change-me-to-a-long-random-string"


def forge_session(secret_key: str, data: dict) -> str:
    """A session cookie signed the way Flask signs them, with a key an attacker knows."""
    forger = Flask("forger")
    forger.secret_key = secret_key
    return SecureCookieSessionInterface().get_signing_serializer(forger).dumps(data)


@pytest.fixture
def make_dev_app(tmp_path):
    """Build apps with the development config (as ./run-srs.sh does) on a scratch database and key file."""
    apps = []

    def build(config: str = "development", **overrides) -> Flask:
        settings = {
            "SECRET_KEY": None,  # as when neither the environment nor .env sets it
            "SECRET_KEY_FILE": str(tmp_path / "instance" / "secret_key"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'dev.db'}",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "TEMPORARY_UPLOAD_FOLDER": str(tmp_path / "tmp"),
            "CELERY_BROKER_URL": "memory://",
            "RATELIMIT_STORAGE_URI": "memory://",
            "LOG_TO_STDOUT": True,
        }
        app = create_app(config, **(settings | overrides))
        limiter.reset()  # after create_app: the limiter has no storage before its first init_app
        with app.app_context():
            create_schema()
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


# SECRET_KEY


def test_forged_session_with_the_public_default_key_opens_no_admin_page(make_dev_app):
    """Finding: the development config accepted the public default key; a forged cookie opened /set_phase/."""
    app = make_dev_app()
    with app.app_context():  # not around the requests: each request gets its own context, as in production
        admin_id = make_user("admin", admin=True).get_id()
    client = app.test_client()
    client.set_cookie("session", forge_session(DEFAULT_SECRET_KEY, {"_user_id": admin_id}))
    response = client.get("/set_phase/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    # The forgery itself is sound: signed with the key the app really uses, the same cookie gets in.
    insider = app.test_client()
    insider.set_cookie("session", forge_session(app.secret_key, {"_user_id": admin_id}))
    assert insider.get("/set_phase/").status_code == 200


@pytest.mark.parametrize("config", ["development", "production"])
@pytest.mark.parametrize("key", [DEFAULT_SECRET_KEY, ENV_EXAMPLE_KEY])
def test_public_keys_are_refused_with_what_to_do(make_dev_app, config, key):
    with pytest.raises(RuntimeError, match="SECRET_KEY is set to a public example value.*token_hex"):
        make_dev_app(config, SECRET_KEY=key)


def test_production_needs_a_secret_key(make_dev_app, tmp_path):
    with pytest.raises(RuntimeError, match="Set SECRET_KEY in production"):
        make_dev_app("production")
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert make_dev_app("production", SECRET_KEY="a-real-random-production-key").secret_key


def test_first_launch_keeps_a_random_private_key_for_the_next_ones(make_dev_app, tmp_path):
    key_file = tmp_path / "instance" / "secret_key"
    first = make_dev_app()
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", first.secret_key)
    assert key_file.read_text().strip() == first.secret_key
    assert make_dev_app().secret_key == first.secret_key  # sessions survive a restart
    assert list(key_file.parent.iterdir()) == [key_file]  # no scratch file left behind


def test_an_explicit_key_wins_over_the_file(make_dev_app, tmp_path):
    app = make_dev_app(SECRET_KEY="my-own-long-random-key")
    assert app.secret_key == "my-own-long-random-key"
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_instance_folder_is_not_committed():
    gitignore = Path(factories.__file__).resolve().parent.parent / ".gitignore"
    assert "instance/" in gitignore.read_text().split()


# Rate limits and proxies


def test_a_decoy_form_field_does_not_escape_the_token_endpoints_limit(make_app):
    """Finding: the limit's key came from a form field before the Basic user: six 401s, then 201."""
    app = make_app(LOGIN_LIMIT_PER_ACCOUNT="5 per minute")
    make_user("alice")
    client = app.test_client()
    for i in range(5):
        response = client.post("/api/v1/tokens", auth=("alice", "guess"), data={"username": f"decoy{i}"})
        assert response.status_code == 401
    blocked = client.post("/api/v1/tokens", auth=("alice", "secret-pw"), data={"username": "decoy-last"})
    assert blocked.status_code == 429
    assert blocked.get_json()["error"] == "too_many_requests"


def test_without_trusted_proxies_forwarded_addresses_are_ignored(make_app):
    app = make_app(LOGIN_LIMIT_PER_ADDRESS="2 per minute")
    client = app.test_client()
    for i in range(2):
        client.post("/login", data={"username": f"u{i}", "password": "x"}, headers={"X-Forwarded-For": f"10.0.0.{i}"})
    spoofed = client.post("/login", data={"username": "u9", "password": "x"}, headers={"X-Forwarded-For": "10.9.9.9"})
    assert spoofed.status_code == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_address_budget(make_app):
    app = make_app(LOGIN_LIMIT_PER_ADDRESS="2 per minute", TRUSTED_PROXIES=1)
    client = app.test_client()

    def attempt(address: str, username: str):
        return client.post("/login", data={"username": username, "password": "x"}, headers={"X-Forwarded-For": address})

    assert attempt("203.0.113.1", "a").status_code == 200
    assert attempt("203.0.113.1", "b").status_code == 200
    assert attempt("203.0.113.1", "c").status_code == 429
    assert attempt("203.0.113.2", "d").status_code == 200  # another student behind the same proxy
    # A client cannot pick its address by prepending its own X-Forwarded-For entries: only the proxy's counts.
    assert attempt("198.51.100.7, 203.0.113.1", "e").status_code == 429


# Timing


@pytest.fixture
def hash_calls(monkeypatch):
    calls: list[str] = []
    real = accounts.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        calls.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(accounts, "check_password_hash", spy)
    return calls


@pytest.mark.parametrize("way", ["form", "token"])
def test_unknown_users_cost_a_password_hash_too(client, alice, hash_calls, way):
    alice.set_password("secret-pw")  # the app's own hash (factories store a cheaper one, to keep tests fast)
    db.session.commit()
    if way == "form":
        assert "Invalid username or password." in client.post(
            "/login", data={"username": "nobody", "password": "guess"}
        ).get_data(as_text=True)
    else:
        assert client.post("/api/v1/tokens", auth=("nobody", "guess")).status_code == 401
    assert len(hash_calls) == 1
    # The same kind of hash as a real account's, so the work (and the time) is the same.
    assert hash_calls[0].split("$")[0] == alice.password_hash.split("$")[0]
    assert hash_calls[0] != alice.password_hash


def test_known_users_are_checked_against_their_own_hash(client, alice, hash_calls):
    assert client.post("/login", data={"username": "alice", "password": "guess"}).status_code == 200
    assert hash_calls == [alice.password_hash]


# Security headers


def assert_secure_headers(response, where: str) -> None:
    headers = response.headers
    assert headers.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, where
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    # Pages whose URL carries a secret (password reset links) send no referrer at all.
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), where


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style\b|<[^>]+\sstyle\s*=", re.I)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def html_pages(app) -> list[str]:
    """Every page the site serves by GET (submission pages aside), plus its query-string views and a 404."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(("/api/", "/static/")):
            continue
        paths.append(rule.rule.replace("<username>", "alice").replace("<team_name>", "al-bo"))
    return paths + ["/leaderboard/?view=overall", "/leaderboard/?round=1", "/attack/?download=0", "/no-such-page"]


@pytest.fixture
def busy_competition(app, alice, admin):
    """A round with matches, defences, attacks and submissions in every state, so pages show all they can."""
    bob = make_user("bob", team="al-bo")
    charlie = make_user("charlie", team="cha-di")
    accepted = factories.make_defence(alice.team, 5.0)
    factories.make_defence(charlie.team, 4.0)
    (match, _) = factories.make_round(1, [(alice.team, charlie.team), (charlie.team, alice.team)])
    factories.make_attack(match, 0.7)
    competition.update_state(phase=Phase.BOTH)
    submissions = [
        factories.make_submission(alice.team, bob, status=SubmissionStatus.QUEUED),
        factories.make_submission(alice.team, alice, status=SubmissionStatus.FAILED),
        factories.make_submission(alice.team, alice, kind=SubmissionKind.ATTACK, status=SubmissionStatus.RUNNING),
    ]
    return [accepted.submission_id, match.id and factories.make_attack(match, 0.8).submission_id] + [
        s.id for s in submissions
    ]


@pytest.mark.parametrize("who", ["anonymous", "alice", "admin"])
def test_every_page_sends_the_headers_and_has_no_inline_script_or_style(client, auth, busy_competition, who):
    if who != "anonymous":
        auth.login(who)
    paths = [p for p in html_pages(client.application) if "<int:submission_id>" not in p]
    paths += [f"/submissions/{i}" for i in busy_competition]
    paths += ["/logout"]
    seen_html = 0
    for path in paths:
        response = client.get(path)
        assert_secure_headers(response, path)
        if response.mimetype != "text/html":
            continue
        seen_html += 1
        body = response.get_data(as_text=True)
        assert not INLINE_SCRIPT.search(body), f"inline <script> on {path}"
        assert not EVENT_HANDLER.search(body), f"inline event handler on {path}: {EVENT_HANDLER.search(body)}"
        assert not INLINE_STYLE.search(body), f"inline style on {path}: {INLINE_STYLE.search(body)}"
        assert not JAVASCRIPT_URL.search(body), f"javascript: URL on {path}"
    assert seen_html >= 10


def test_api_static_and_error_answers_send_the_headers_too(client, alice):
    assert_secure_headers(client.get("/api/v1/competition"), "api 401")
    assert_secure_headers(client.get("/api/v1/me", headers=factories.api_token(alice)), "api")
    assert_secure_headers(client.get("/static/style.css"), "static")
    assert_secure_headers(client.get("/nowhere"), "404")
