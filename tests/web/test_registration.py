"""Registration confirmed by e-mail: the answer, and the work the request does, are the same whether or not an
account has the address; the mailed link completes the registration once, expires, and refuses tampering."""

from __future__ import annotations

import base64
import html
import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash

from app import clock
from app.extensions import db
from app.models import User
from app.services import accounts, competition, password_reset, registration
from tests.factories import make_team, make_user

PASSWORD = "long-enough-pw"


def form(**fields) -> dict[str, str]:
    """The registration form of a new student carol in a new team, with fields overriding the defaults."""
    data = {
        "username": "carol",
        "email": "carol@example.org",
        "password": PASSWORD,
        "password2": PASSWORD,
        "sciper": "234567",
        "team_select": accounts.NEW_TEAM,
        "new_team_name": "ca-ro",
    }
    return data | fields


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def users() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(sa.select(User.username)))


@pytest.fixture
def handed(monkeypatch):
    """Tasks the request hands to the broker, and addresses looked up by the request itself."""
    seen = {"tasks": [], "lookups": []}
    monkeypatch.setattr(registration.queue, "send_task", lambda name, args: seen["tasks"].append((name, args)))
    lookup = password_reset.find_by_email
    monkeypatch.setattr(password_reset, "find_by_email", lambda email: seen["lookups"].append(email) or lookup(email))
    return seen


def test_the_answer_is_the_same_for_known_and_unknown_addresses(client, alice, handed):
    """Before, a known address was answered 422 "This e-mail address is already registered: log in instead"."""
    known = client.post("/register", data=form(email="alice@example.org"))
    unknown = client.post(
        "/register", data=form(email="nobody@example.org", username="dave", sciper="345678", new_team_name="da-ve")
    )
    assert known.status_code == unknown.status_code == 200
    hours = current_app.config["REGISTRATION_CONFIRM_HOURS"]
    assert (
        f"We sent a message to alice@example.org to confirm your registration: open the link in it within {hours} hours"
        in text(known)
    )
    assert text(known).replace("alice@example.org", "X") == text(unknown).replace("nobody@example.org", "X")
    # The same work: one task each, no lookup of the address in the request.
    assert [name for name, _ in handed["tasks"]] == [registration.CONFIRM_TASK] * 2
    assert handed["lookups"] == []
    assert users() == ["alice"]


def test_each_address_gets_one_mail_saying_what_to_do(app, client, alice, registration_mails):
    client.post("/register", data=form(email="nobody@example.org"))
    client.post("/register", data=form(email="ALICE@example.org", username="dave", sciper="345678"))
    assert [(subject, to) for subject, to, _ in registration_mails] == [
        ("[SRS] Confirm your registration", ["nobody@example.org"]),
        ("[SRS] Someone tried to register with your address", ["ALICE@example.org"]),
    ]
    assert "/register/confirm/" in registration_mails[0][2]
    notice = " ".join(registration_mails[1][2].split())
    assert "which already has the account alice" in notice and "/register/confirm/" not in notice
    assert f"{app.config['SITE_URL']}/login" in notice  # the site's address (FLASK_RUN_PORT may move it)
    reset = re.search(r"http\S+(/reset-password/\S+)", notice).group(1)
    assert client.get(reset).status_code == 200  # the owner can choose a new password at once
    assert users() == ["alice"]


def test_a_known_address_cannot_confirm_anything(client, alice, registration_mails):
    """Whoever typed a known address gets no link: the notice goes to the account's owner only."""
    client.post("/register", data=form(email="alice@example.org"))
    (mail,) = registration_mails
    assert mail[1] == ["alice@example.org"] and "confirm" not in mail[2].lower().replace("confirmed", "")


def test_the_link_creates_the_account_once(client, auth, registration_mails):
    client.post("/register", data=form())
    path = registration_mails.link_path()
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert "Create the account carol (carol@example.org) in a new team ca-ro" in text(page)
    assert users() == []  # a mail scanner fetching the link confirms nothing
    done = client.post(path)
    assert done.status_code == 302
    assert users() == ["carol"]
    carol = accounts.find_user("carol")
    assert carol.team.name == "ca-ro" and carol.sciper == "234567" and carol.email == "carol@example.org"
    assert check_password_hash(carol.password_hash, PASSWORD)
    again = client.post(path, follow_redirects=True)
    assert "This registration was already confirmed: log in as carol." in text(again)
    assert "already confirmed" in text(client.get(path))
    assert users() == ["carol"]
    assert auth.login("carol", PASSWORD).status_code == 302


def test_the_link_carries_no_secret_in_clear(client, registration_mails):
    client.post("/register", data=form(team_select="al-bo", new_team_name="", join_code=make_team("al-bo").join_code))
    token = registration_mails.link_path().rsplit("/", 1)[1]
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for secret in (PASSWORD, "scrypt", "234567", make_team("al-bo").join_code, "carol"):
        assert secret.encode() not in decoded and secret not in token


def test_an_expired_link_is_refused(client, registration_mails):
    hours = current_app.config["REGISTRATION_CONFIRM_HOURS"]
    clock.freeze(clock.now() - timedelta(hours=hours, minutes=1))
    try:
        client.post("/register", data=form())
    finally:
        clock.freeze(None)
    path = registration_mails.link_path()
    for response in (client.get(path), client.post(path)):
        assert response.status_code == 400
        assert f"This link has expired (links are valid {hours} hours): register again to get a new one." in text(
            response
        )
    assert users() == []


def test_a_link_just_within_its_lifetime_works(client, registration_mails):
    hours = current_app.config["REGISTRATION_CONFIRM_HOURS"]
    clock.freeze(clock.now() - timedelta(hours=hours) + timedelta(minutes=1))
    try:
        client.post("/register", data=form())
    finally:
        clock.freeze(None)
    assert client.post(registration_mails.link_path()).status_code == 302
    assert users() == ["carol"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:40] + ("A" if t[40] != "A" else "B") + t[41:],
        lambda t: t[:-3],
        lambda t: "garbage",
        lambda t: "A" * 3000,
    ],
    ids=["one-character", "truncated", "garbage", "too-long"],
)
def test_a_tampered_link_is_refused(client, registration_mails, mangle):
    client.post("/register", data=form())
    path = registration_mails.link_path()
    bad = path.rsplit("/", 1)[0] + "/" + mangle(path.rsplit("/", 1)[1])
    for response in (client.get(bad), client.post(bad)):
        assert response.status_code == 400
        assert "This link is not valid: copy the whole link from the e-mail, or register again." in text(response)
    assert users() == []


def test_a_link_made_with_another_key_is_refused(make_app, registration_mails):
    other = make_app(SECRET_KEY="another-secret-key")
    other.test_client().post("/register", data=form())
    path = registration_mails.link_path()
    here = make_app()
    assert here.test_client().get(path).status_code == 400


def someone_else(username: str, sciper: str | None = None) -> None:
    """Another student registered meanwhile, with another address."""
    user = make_user(username)
    user.email, user.sciper = f"other-{username}@example.org", sciper or user.sciper
    db.session.commit()


@pytest.mark.parametrize(
    ("meanwhile", "message"),
    [
        (lambda: someone_else("Carol"), "This username is taken: please choose another one. Register again."),
        (lambda: someone_else("dave", "234567"), "This SCIPER is already registered: each student registers once."),
        (lambda: make_team("CA-RO"), "A team with this name exists: join it or choose another name. Register again."),
    ],
    ids=["username", "sciper", "team-name"],
)
def test_confirmation_checks_again_what_may_have_changed(client, registration_mails, meanwhile, message):
    client.post("/register", data=form())
    meanwhile()
    before = users()
    response = client.post(registration_mails.link_path())
    assert response.status_code == 409
    assert "Your registration cannot be completed as you made it: " + message in text(response)
    assert users() == before


def test_a_team_filled_or_its_code_renewed_meanwhile_is_said(client, alice, registration_mails):
    code = alice.team.join_code
    client.post("/register", data=form(team_select="al-bo", new_team_name="", join_code=code))
    client.post(
        "/register",
        data=form(
            username="dave",
            email="dave@example.org",
            sciper="345678",
            team_select="al-bo",
            new_team_name="",
            join_code=code,
        ),
    )
    carol_link, dave_link = registration_mails.link_path(0), registration_mails.link_path(1)
    assert client.post(carol_link).status_code == 302
    full = client.post(dave_link)
    assert full.status_code == 409
    assert "Team al-bo already has 2 members: pick another team. Register again." in text(full)
    assert users() == ["alice", "carol"]


def test_a_renewed_join_code_stops_pending_registrations(client, alice, registration_mails):
    client.post("/register", data=form(team_select="al-bo", new_team_name="", join_code=alice.team.join_code))
    accounts.renew_join_code(alice.team)
    response = client.post(registration_mails.link_path())
    assert response.status_code == 409
    assert "This is not team al-bo's join code" in text(response)


def test_two_pending_registrations_of_one_address_make_one_account(client, registration_mails):
    client.post("/register", data=form())
    client.post("/register", data=form(username="carol2", sciper="345678", new_team_name="ca-ro-2"))
    assert client.post(registration_mails.link_path(0)).status_code == 302
    second = client.post(registration_mails.link_path(1))
    assert second.status_code == 409
    assert "This e-mail address is already registered: log in instead." in text(second)
    assert users() == ["carol"]


def test_a_link_confirmed_after_registration_closed_is_refused(client, registration_mails):
    client.post("/register", data=form())
    competition.update_state(registration_open=False)
    response = client.post(registration_mails.link_path())
    assert response.status_code == 400
    assert "Registration has closed since you registered" in text(response)
    assert users() == []


def test_without_a_mail_server_the_page_says_where_the_link_is(make_app, registration_mails):
    page = make_app().test_client().post("/register", data=form())
    assert "This site has no mail server set up" in text(page) and "worker's log" in text(page)
    with_mail = make_app(MAIL_SERVER="smtp.example.org").test_client()
    assert "MAIL_SERVER" not in text(
        with_mail.post("/register", data=form(username="dave", sciper="345678", new_team_name="da-ve"))
    )


def test_registrations_that_send_mail_are_limited_per_address_typed(make_app, registration_mails):
    app = make_app(REGISTRATION_LIMIT_PER_EMAIL="2 per hour", RATELIMIT_STORAGE_URI="memory://")
    make_user("alice")
    client = app.test_client()
    assert client.post("/register", data=form(sciper="12")).status_code == 422  # a typo does not count
    for address in ("carol@example.org", "alice@example.org"):  # the same for an account's address
        statuses = [client.post("/register", data=form(email=address)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
    assert len(registration_mails) == 4
    assert client.post("/register", data=form(email="dave@example.org")).status_code == 200


def test_with_the_broker_down_the_answer_waits_for_no_mail(client, alice, broker_down_slow_mail):
    """The worker's half runs in a background thread: neither answer waits for the (slow) delivery."""
    timings = []
    for email in ("alice@example.org", "carol@example.org"):
        start = time.perf_counter()
        assert client.post("/register", data=form(email=email)).status_code == 200
        timings.append(time.perf_counter() - start)
    assert max(timings) < 0.9
    broker_down_slow_mail.wait_for(2)
    assert sorted(broker_down_slow_mail) == [
        ("[SRS] Confirm your registration", ["carol@example.org"]),
        ("[SRS] Someone tried to register with your address", ["alice@example.org"]),
    ]


def test_logging_in_before_confirming_says_what_is_missing(client, auth, registration_mails):
    client.post("/register", data=form())
    refused = auth.login("carol", PASSWORD)
    assert "Just registered? The account exists once you confirm the link mailed to you." in text(refused)
    client.post(registration_mails.link_path())
    assert auth.login("carol", PASSWORD).status_code == 302
