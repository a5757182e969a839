"""Admin pages: who may use them, the phase and registration switches, and CSRF on state-changing forms."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest

from app.extensions import db
from app.services import accounts, competition
from tests.factories import make_user


def page_text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def banner(response) -> str:
    found = re.search(r'<div[^>]*id="competition-banner"[^>]*>(.*?)</div>', response.get_data(as_text=True), re.S)
    assert found, "no banner on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def state():
    """The competition state as stored (not as cached in this session)."""
    db.session.expire_all()
    return competition.get_state()


def csrf_token(client, path: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found, f"no csrf_token on {path}"
    return found.group(1)


def set_phase(client, phase: str, **extra):
    return client.post("/set_phase/", data={"phase": phase, **extra})


def set_registration(client, value: str, **extra):
    return client.post("/set_registration/", data={"registration_open": value, **extra})


# Who may use the admin pages


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/set_phase/"), ("POST", "/set_phase/"), ("POST", "/set_registration/")]
)
def test_anonymous_users_are_sent_to_login(client, method, path):
    response = client.open(path, method=method, data={"phase": "Attack", "registration_open": "0"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert state().phase.value == "None"
    assert state().registration_open


def test_students_are_forbidden(client, auth, alice):
    auth.login()
    page = client.get("/set_phase/")
    assert page.status_code == 403
    assert "This page is for the course staff." in page_text(page)
    assert set_phase(client, "Attack").status_code == 403
    assert set_registration(client, "0").status_code == 403
    assert state().phase.value == "None"
    assert state().registration_open


# Phase


def test_admin_sees_the_phase_form(client, auth, admin):
    auth.login("admin")
    page = client.get("/set_phase/")
    assert page.status_code == 200
    options = re.findall(r'<option[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert {"Defence", "Attack", "Both", "None"} <= set(options)


def test_admin_sets_each_phase(client, auth, admin):
    auth.login("admin")
    for phase in ("Defence", "Attack", "Both", "None"):
        response = set_phase(client, phase)
        assert response.status_code == 302
        page = client.get(response.headers["Location"])
        assert f"The phase is now {phase}." in page_text(page)
        assert f"Phase {phase}" in banner(page)
        assert f"Phase {phase}" in banner(client.get("/index"))
        assert state().phase.value == phase


@pytest.mark.parametrize("phase", ["Holiday", "", "attack; drop table"])
def test_invalid_phase_is_refused_and_nothing_changes(client, auth, admin, phase):
    auth.login("admin")
    set_phase(client, "Attack")
    response = set_phase(client, phase)
    assert response.status_code == 400
    assert state().phase.value == "Attack"


# Registration


def test_admin_closes_and_opens_registration(client, auth, admin):
    auth.login("admin")
    response = set_registration(client, "0")
    assert response.status_code == 302
    assert "Registration is now closed." in page_text(client.get(response.headers["Location"]))
    assert not state().registration_open
    assert "Registration closed" in banner(client.get("/index"))
    auth.logout()
    assert "Registration is closed" in page_text(client.get("/register"))

    auth.login("admin")
    assert set_registration(client, "1").status_code == 302
    assert state().registration_open
    auth.logout()
    register_page = client.get("/register")
    assert "Registration is closed" not in page_text(register_page)
    assert 'name="username"' in register_page.get_data(as_text=True)


def test_invalid_registration_value_is_refused(client, auth, admin):
    auth.login("admin")
    response = set_registration(client, "maybe")
    assert response.status_code == 400
    assert "Choose Open or Closed." in page_text(response)
    assert state().registration_open


# CSRF (on in these tests, as in production)


@pytest.fixture
def csrf_client(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    make_user("admin", admin=True)
    return app.test_client()


def login_with_token(client, username: str = "admin", password: str = "secret-pw"):
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, "login with its CSRF token should work"
    return response


def test_set_phase_without_csrf_token_is_refused(csrf_client):
    login_with_token(csrf_client)
    response = set_phase(csrf_client, "Attack")
    assert response.status_code == 400
    assert "security token" in page_text(response)
    assert state().phase.value == "None"


def test_set_phase_with_csrf_token_works(csrf_client):
    login_with_token(csrf_client)
    response = set_phase(csrf_client, "Attack", csrf_token=csrf_token(csrf_client, "/set_phase/"))
    assert response.status_code == 302
    assert state().phase.value == "Attack"


def test_set_phase_with_a_forged_csrf_token_is_refused(csrf_client):
    login_with_token(csrf_client)
    response = set_phase(csrf_client, "Attack", csrf_token="forged-token")
    assert response.status_code == 400
    assert state().phase.value == "None"


def test_set_registration_needs_the_csrf_token(csrf_client):
    login_with_token(csrf_client)
    assert set_registration(csrf_client, "0").status_code == 400
    assert state().registration_open
    token = csrf_token(csrf_client, "/set_phase/")
    assert set_registration(csrf_client, "0", csrf_token=token).status_code == 302
    assert not state().registration_open


def test_login_without_csrf_token_is_refused(csrf_client):
    response = csrf_client.post("/login", data={"username": "admin", "password": "secret-pw"})
    assert response.status_code == 400
    assert "security token" in page_text(response)
    assert csrf_client.get("/index").status_code == 302  # still anonymous


def test_register_without_csrf_token_is_refused(csrf_client, registration_mails):
    data = {
        "username": "carol",
        "email": "carol@example.org",
        "password": "long-enough-pw",
        "password2": "long-enough-pw",
        "sciper": "234567",
        "team_select": accounts.NEW_TEAM,
        "new_team_name": "ca-ro",
    }
    assert csrf_client.post("/register", data=data).status_code == 400
    assert accounts.find_user("carol") is None
    assert registration_mails == []
    assert (
        csrf_client.post("/register", data=data | {"csrf_token": csrf_token(csrf_client, "/register")}).status_code
        == 200
    )
    link = registration_mails.link_path()
    assert csrf_client.post(link).status_code == 400  # confirming is a state change too
    assert accounts.find_user("carol") is None
    assert csrf_client.post(link, data={"csrf_token": csrf_token(csrf_client, link)}).status_code == 302
    assert accounts.find_user("carol") is not None
