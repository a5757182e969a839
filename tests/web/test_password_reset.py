"""Password reset: the request page never tells whether an address exists; links are signed, expire, die once
used or once the password changed; requests are rate limited per e-mail address and per client address."""

from __future__ import annotations

import html
import re
import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import itsdangerous.timed
import pytest
import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash

from app.extensions import db
from app.models import ApiToken, User
from app.services import password_reset
from tests.factories import api_token, make_user


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(
        1
    )


@pytest.fixture
def sent(monkeypatch):
    """Mails of the password-reset service: (subject, recipients, text). The request hands the address to a
    worker (tests/integration/test_password_reset_mail.py runs the real one); here its half runs at once."""
    outbox = []

    def record(subject, recipients, text, html=None):
        outbox.append((subject, recipients, text))

    monkeypatch.setattr(password_reset.mail, "queue_mail", record)
    monkeypatch.setattr(password_reset.mail, "deliver", record)
    monkeypatch.setattr(password_reset.queue, "send_task", lambda name, args: password_reset.send_link_for(*args))
    return outbox


def link_path(mail_text: str) -> str:
    return urlsplit(re.search(r"(http\S+/reset-password/\S+)", mail_text).group(1)).path


def stored_user(username: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def test_login_page_links_to_the_forgot_page(client):
    assert 'href="/forgot-password"' in client.get("/login").get_data(as_text=True)
    assert client.get("/forgot-password").status_code == 200


def test_the_answer_is_the_same_for_known_and_unknown_addresses(client, alice, sent):
    known = client.post("/forgot-password", data={"email": "alice@example.org"}, follow_redirects=True)
    unknown = client.post("/forgot-password", data={"email": "nobody@example.org"}, follow_redirects=True)
    assert known.status_code == unknown.status_code == 200
    assert text(known).replace("alice@example.org", "X") == text(unknown).replace("nobody@example.org", "X")
    assert "If an account uses alice@example.org, a reset link is on its way" in text(known)
    assert [recipients for _, recipients, _ in sent] == [["alice@example.org"]]


def test_address_is_matched_without_case(client, alice, sent):
    client.post("/forgot-password", data={"email": " Alice@Example.ORG "})
    assert len(sent) == 1


def test_bad_address_is_refused_with_a_message(client, sent):
    response = client.post("/forgot-password", data={"email": "not an address"})
    assert response.status_code == 422
    assert "Invalid email address" in text(response)
    assert sent == []


def test_link_sets_a_new_password_once(client, auth, alice, sent):
    client.post("/forgot-password", data={"email": "alice@example.org"})
    _, _, body = sent[0]
    assert "30 minutes" in body
    path = link_path(body)
    form = client.get(path)
    assert form.status_code == 200
    assert form.headers["Referrer-Policy"] == "no-referrer"  # the token must not leak to linked sites
    assert "For the account alice" in text(form)
    done = client.post(path, data={"password": "brand-new-pw", "password2": "brand-new-pw"})
    assert done.status_code == 302
    assert check_password_hash(stored_user("alice").password_hash, "brand-new-pw")
    assert not check_password_hash(stored_user("alice").password_hash, "secret-pw")
    reused = client.get(path)
    assert reused.status_code == 400
    assert "already used" in text(reused)
    again = client.post(path, data={"password": "another-pw-1", "password2": "another-pw-1"})
    assert again.status_code == 400
    assert check_password_hash(stored_user("alice").password_hash, "brand-new-pw")
    assert auth.login("alice", "brand-new-pw").status_code == 302


def test_mismatched_or_short_passwords_change_nothing(client, alice, sent):
    client.post("/forgot-password", data={"email": "alice@example.org"})
    path = link_path(sent[0][2])
    assert client.post(path, data={"password": "brand-new-pw", "password2": "other-pw-123"}).status_code == 422
    short = client.post(path, data={"password": "short", "password2": "short"})
    assert short.status_code == 422
    assert "between 8 and 128 characters" in text(short)
    assert check_password_hash(stored_user("alice").password_hash, "secret-pw")
    assert client.get(path).status_code == 200  # the link still works


def test_expired_link_is_refused(client, alice, monkeypatch):
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    # Sign the token as if it had been made just over PASSWORD_RESET_MINUTES ago.
    past = time.time() - minutes * 60 - 5
    monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: past))
    token = password_reset.make_token(alice)
    monkeypatch.undo()
    response = client.get(f"/reset-password/{token}")
    assert response.status_code == 400
    assert f"expired (links are valid {minutes} minutes)" in text(response)
    assert (
        client.post(f"/reset-password/{token}", data={"password": "x" * 10, "password2": "x" * 10}).status_code == 400
    )
    assert check_password_hash(stored_user("alice").password_hash, "secret-pw")


def test_link_just_within_its_lifetime_works(client, alice, monkeypatch):
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    past = time.time() - minutes * 60 + 30
    monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: past))
    token = password_reset.make_token(alice)
    monkeypatch.undo()
    assert client.get(f"/reset-password/{token}").status_code == 200


def test_link_dies_when_the_password_changes_otherwise(client, alice):
    token = password_reset.make_token(alice)
    alice.set_password("changed-elsewhere")
    db.session.commit()
    assert client.get(f"/reset-password/{token}").status_code == 400


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), lambda t: "garbage"])
def test_tampered_link_is_refused(client, alice, mangle):
    response = client.get(f"/reset-password/{mangle(password_reset.make_token(alice))}")
    assert response.status_code == 400
    assert "not valid" in text(response)


def test_token_signed_for_another_purpose_is_refused(client, alice):
    other = itsdangerous.URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="something-else")
    token = other.dumps({"user": alice.id, "pw": password_reset._fingerprint(alice)})
    assert client.get(f"/reset-password/{token}").status_code == 400


def test_reset_revokes_api_tokens(client, alice, sent):
    headers = api_token(alice)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    client.post("/forgot-password", data={"email": "alice@example.org"})
    client.post(link_path(sent[0][2]), data={"password": "brand-new-pw", "password2": "brand-new-pw"})
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert db.session.scalar(sa.select(sa.func.count(ApiToken.id))) == 0


def test_requests_are_limited_per_email_address(make_app, sent):
    app = make_app(PASSWORD_RESET_LIMIT_PER_EMAIL="2 per hour", RATELIMIT_STORAGE_URI="memory://")
    outbox = sent
    make_user("alice", team="al-bo")
    make_user("bob", team="al-bo")
    client = app.test_client()
    statuses = [client.post("/forgot-password", data={"email": "alice@example.org"}).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]
    assert len(outbox) == 2
    # Another address is not affected, and the limit applies to unknown addresses too (it reveals nothing).
    assert client.post("/forgot-password", data={"email": "bob@example.org"}).status_code == 302
    unknown = [client.post("/forgot-password", data={"email": "x@example.org"}).status_code for _ in range(3)]
    assert unknown == [302, 302, 429]


def test_requests_are_limited_per_client_address(make_app, monkeypatch):
    app = make_app(PASSWORD_RESET_LIMIT_PER_ADDRESS="3 per hour", RATELIMIT_STORAGE_URI="memory://")
    monkeypatch.setattr(password_reset.mail, "queue_mail", lambda *args: None)
    client = app.test_client()
    statuses = [client.post("/forgot-password", data={"email": f"u{i}@example.org"}).status_code for i in range(4)]
    assert statuses == [302, 302, 302, 429]


def test_forms_need_csrf(make_app, sent):
    app = make_app(WTF_CSRF_ENABLED=True)
    outbox = [text for _, _, text in sent]
    user = make_user("alice", team="al-bo")
    client = app.test_client()
    assert client.post("/forgot-password", data={"email": "alice@example.org"}).status_code == 400
    assert outbox == []
    token = csrf(client, "/forgot-password")
    assert client.post("/forgot-password", data={"email": "alice@example.org", "csrf_token": token}).status_code == 302
    path = link_path(sent[0][2])
    data = {"password": "brand-new-pw", "password2": "brand-new-pw"}
    assert client.post(path, data=data).status_code == 400
    assert client.post(path, data=data | {"csrf_token": csrf(client, path)}).status_code == 302
    db.session.expire_all()
    assert check_password_hash(db.session.get(User, user.id).password_hash, "brand-new-pw")


def test_known_and_unknown_addresses_cost_the_request_the_same_work(client, alice, monkeypatch):
    """The request only hands the address to a worker: no lookup, no mail from the web process, either way."""
    handed, inline = [], []
    monkeypatch.setattr(password_reset.queue, "send_task", lambda name, args: handed.append((name, args)))
    monkeypatch.setattr(password_reset, "find_by_email", lambda email: inline.append(email))
    for email in ("alice@example.org", "nobody@example.org"):
        assert client.post("/forgot-password", data={"email": email}).status_code == 302
    assert handed == [
        (password_reset.RESET_TASK, ["alice@example.org"]),
        (password_reset.RESET_TASK, ["nobody@example.org"]),
    ]
    assert inline == []


def test_with_the_broker_down_the_answer_does_not_wait_for_the_mail(client, alice, broker_down_slow_mail):
    """Before, the mail was sent inline when the broker was down: a known address took much longer to answer."""
    timings = {}
    for email in ("alice@example.org", "nobody@example.org"):
        start = time.perf_counter()
        assert client.post("/forgot-password", data={"email": email}).status_code == 302
        timings[email] = time.perf_counter() - start
    assert max(timings.values()) < 0.9  # neither answer waited for the 1 s delivery
    broker_down_slow_mail.wait_for(1)
    # the known address still got its link, in the background
    assert [to for _, to in broker_down_slow_mail] == [["alice@example.org"]]


def test_a_reset_ends_every_other_session_and_remember_me_cookie(app, alice, sent):
    other = app.test_client()  # a browser left logged in, with "remember me"
    other.post("/login", data={"username": "alice", "password": "secret-pw", "remember_me": "y"})
    assert other.get("/index").status_code == 200
    remembered = other.get_cookie("remember_token")
    assert remembered is not None
    here = app.test_client()  # the browser making the change is logged in too, and stays so
    here.post("/login", data={"username": "alice", "password": "secret-pw"})
    here.post("/forgot-password", data={"email": "alice@example.org"})
    changed = here.post(link_path(sent[0][2]), data={"password": "brand-new-pw", "password2": "brand-new-pw"})
    assert changed.status_code == 302 and changed.headers["Location"].endswith("/index")
    assert here.get("/index").status_code == 200
    gone = other.get("/index")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]
    cookie_only = app.test_client()  # the old remember-me cookie alone no longer logs anyone in
    cookie_only.set_cookie("remember_token", remembered.value)
    assert cookie_only.get("/index").status_code == 302
