"""Register, log in, log out: what a student sees at the door."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import User
from app.services import accounts, competition
from tests.factories import make_team, make_user

PASSWORD = "long-enough-pw"
HOME_PATHS = ("/", "/index")


def register(client, **fields):
    """POST /register for a new student carol in a new team, with fields overriding the defaults."""
    data = {
        "username": "carol",
        "email": "carol@example.org",
        "password": PASSWORD,
        "password2": PASSWORD,
        "sciper": "234567",
        "team_select": accounts.NEW_TEAM,
        "new_team_name": "ca-ro",
    }
    return client.post("/register", data=data | fields)


def text(response) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def user_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id)))


def team_choices(client) -> list[str]:
    page = client.get("/register").get_data(as_text=True)
    select = re.search(r'<select[^>]*name="team_select"[^>]*>(.*?)</select>', page, re.S)
    assert select, "the registration form has no team_select field"
    return [html.unescape(v) for v in re.findall(r'<option[^>]*value="([^"]*)"', select.group(1))]


def set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def cookie(response, name: str) -> str:
    found = [c for c in set_cookies(response) if c.startswith(name + "=")]
    assert found, f"no {name} cookie set; got {set_cookies(response)}"
    return found[0]


def is_logged_in(client) -> bool:
    return client.get("/index").status_code == 200


# Registration


def test_register_in_a_new_team(client, app):
    response = register(client)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    carol = accounts.find_user("carol")
    assert carol is not None and carol.team.name == "ca-ro" and not carol.is_admin
    assert "you are now registered" in text(client.get("/login"))


def test_registered_student_can_log_in(client, auth, app):
    register(client)
    assert auth.login("carol", PASSWORD).status_code == 302
    assert "Hi, carol!" in text(client.get("/index"))


def test_register_joining_a_team_with_a_free_place(client, alice):
    response = register(client, team_select="al-bo", new_team_name="")
    assert response.status_code == 302
    assert [m.username for m in alice.team.members] == ["alice", "carol"]


def test_register_into_a_full_team_is_refused(client, alice):
    make_user("bob", team="al-bo")
    before = user_count()
    response = register(client, team_select="al-bo", new_team_name="")
    assert response.status_code == 422
    assert "Team al-bo already has 2 members: pick another team." in text(response)
    assert user_count() == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "alice"}, "This username is taken"),
        ({"username": " Alice "}, "This username is taken"),
        ({"username": "ALICE"}, "This username is taken"),
        ({"email": "alice@example.org"}, "This e-mail address is already registered"),
        ({"email": "ALICE@Example.org"}, "This e-mail address is already registered"),
        ({"sciper": "12345"}, "6 digits"),
        ({"sciper": "1234567"}, "6 digits"),
        ({"sciper": "12a456"}, "6 digits"),
        ({"new_team_name": ""}, "Give your new team a name."),
        ({"new_team_name": "   "}, "Give your new team a name."),
        ({"new_team_name": "Équipe"}, "printable ASCII"),
        ({"new_team_name": "New team"}, '"New team" cannot be a team name'),
        ({"new_team_name": "new TEAM"}, '"New team" cannot be a team name'),
        ({"new_team_name": "AL-BO"}, "A team with this name exists"),
        ({"password2": "another-password"}, "Passwords differ."),
    ],
)
def test_register_refused_with_a_message(client, alice, fields, message):
    before = user_count()
    response = register(client, **fields)
    assert response.status_code == 422
    assert message in text(response)
    assert user_count() == before
    assert accounts.find_user("carol") is None


def test_register_refuses_a_taken_sciper(client, alice):
    response = register(client, sciper=alice.sciper)
    assert response.status_code == 422
    assert "This SCIPER is already registered" in text(response)
    assert accounts.find_user("carol") is None


def test_joinable_teams_are_only_those_with_a_free_place(client, alice):
    make_user("charlie", team="cha-di")
    make_user("dimitri", team="cha-di")
    make_user("admin", team="staff", admin=True)
    make_team("empty")
    assert team_choices(client) == [accounts.NEW_TEAM, "al-bo", "empty"]


# Login and logout


def test_login_and_logout(client, auth, alice):
    assert not is_logged_in(client)
    response = auth.login()
    assert response.status_code == 302
    assert "Hi, alice!" in text(client.get("/index"))
    assert "Logout (alice)" in text(client.get("/index"))
    auth.logout()
    assert not is_logged_in(client)


def test_login_is_case_and_space_insensitive_on_the_username(client, auth, alice):
    assert auth.login(" ALICE ").status_code == 302
    assert is_logged_in(client)


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_login_with_wrong_credentials_says_so(client, auth, alice, username):
    response = auth.login(username, "wrong-password")
    assert response.status_code == 200
    assert "Invalid username or password." in text(response)
    assert not is_logged_in(client)


def test_remember_me_sets_a_remember_cookie(client, alice):
    response = client.post("/login", data={"username": "alice", "password": "secret-pw", "remember_me": "y"})
    assert response.status_code == 302
    assert "HttpOnly" in cookie(response, "remember_token")


def test_without_remember_me_there_is_no_remember_cookie(client, auth, alice):
    response = auth.login()
    assert response.status_code == 302
    assert not [c for c in set_cookies(response) if c.startswith("remember_token=")]


def test_session_cookie_is_httponly_and_samesite_lax(client, auth, alice):
    session = cookie(auth.login(), "session")
    assert "HttpOnly" in session
    assert "SameSite=Lax" in session


def test_login_follows_a_same_site_next(client, alice):
    response = client.post("/login?next=/team/x", data={"username": "alice", "password": "secret-pw"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/team/x"


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "//evil.example/team/x", "http://evil.example/", "javascript:alert(1)", "/\\evil.example"],
)
def test_login_ignores_a_next_to_another_site(client, alice, target):
    response = client.post("/login", query_string={"next": target}, data={"username": "alice", "password": "secret-pw"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc) == ("", "")
    assert location.path in HOME_PATHS


def test_login_page_sends_anonymous_users_back_where_they_were(client, alice):
    redirect = client.get("/user/alice")
    assert redirect.status_code == 302
    login_url = urlsplit(redirect.headers["Location"])
    assert login_url.path == "/login"
    (target,) = parse_qs(login_url.query)["next"]
    response = client.post(f"/login?next={target}", data={"username": "alice", "password": "secret-pw"})
    assert response.headers["Location"] == "/user/alice"


# Registration closed


def test_registration_closed_and_opened_again(client, app):
    competition.update_state(registration_open=False)
    page = client.get("/register")
    assert page.status_code == 200
    assert "Registration is closed" in text(page)
    assert 'name="username"' not in page.get_data(as_text=True)
    assert register(client).status_code == 403
    assert accounts.find_user("carol") is None

    competition.update_state(registration_open=True)
    page = client.get("/register")
    assert page.status_code == 200
    assert "Registration is closed" not in text(page)
    assert 'name="username"' in page.get_data(as_text=True)
    assert register(client).status_code == 302
    assert accounts.find_user("carol") is not None


# Rate limit


def test_login_rate_limit_is_per_account(make_app):
    app = make_app(LOGIN_LIMIT_PER_ACCOUNT="3 per minute")
    make_user("alice")
    make_user("bob")
    client = app.test_client()
    for _ in range(3):
        assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code == 200
    blocked = client.post("/login", data={"username": "alice", "password": "secret-pw"})
    assert blocked.status_code == 429
    assert "Too many attempts" in text(blocked)
    # The same account under another spelling is still blocked.
    assert client.post("/login", data={"username": " ALICE ", "password": "secret-pw"}).status_code == 429
    assert not is_logged_in(client)
    # Another account is not.
    assert client.post("/login", data={"username": "bob", "password": "secret-pw"}).status_code == 302
    assert is_logged_in(client)


def test_login_page_and_token_endpoint_share_one_budget_per_account(make_app):
    app = make_app(LOGIN_LIMIT_PER_ACCOUNT="3 per minute")
    make_user("alice")
    client = app.test_client()
    for _ in range(2):
        assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code == 200
    assert client.post("/api/v1/tokens", auth=("alice", "wrong")).status_code == 401
    blocked = client.post("/api/v1/tokens", auth=("alice", "secret-pw"))
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "too_many_requests"
