"""Register, log in, log out: what a student sees at the door."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import User
from app.services import accounts, competition
from tests.factories import make_team, make_user
from tests.web.test_registration import PASSWORD
from tests.web.test_registration import form as registration_form

HOME_PATHS = ("/", "/index")


@pytest.fixture(autouse=True)
def mails(registration_mails):
    """Registrations mail their link through the worker's half, run at once."""
    return registration_mails


def register(client, **fields):
    """POST /register for a new student carol in a new team, with fields overriding the defaults (the form's
    answer: no account exists until the mailed link is confirmed)."""
    return client.post("/register", data=registration_form(**fields))


def registered(client, mails, **fields):
    """Register as register() does, then confirm through the mailed link; the confirmation's answer."""
    answer = register(client, **fields)
    assert answer.status_code == 200, text(answer)
    return client.post(mails.link_path())


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


def test_register_in_a_new_team(client, app, mails):
    asked = register(client)
    assert asked.status_code == 200
    assert "Check your inbox" in text(asked)
    assert accounts.find_user("carol") is None  # nothing until the link is confirmed
    response = client.post(mails.link_path())
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    carol = accounts.find_user("carol")
    assert carol is not None and carol.team.name == "ca-ro" and not carol.is_admin
    assert "Your registration is confirmed: log in as carol." in text(client.get("/login"))


def test_registered_student_can_log_in(client, auth, app, mails):
    registered(client, mails)
    assert auth.login("carol", PASSWORD).status_code == 302
    assert "Hi, carol!" in text(client.get("/index"))


def test_register_joining_a_team_with_a_free_place(client, alice, mails):
    response = registered(client, mails, team_select="al-bo", new_team_name="", join_code=alice.team.join_code)
    assert response.status_code == 302
    assert [m.username for m in alice.team.members] == ["alice", "carol"]


def test_join_code_is_case_and_separator_insensitive(client, alice, mails):
    typed = alice.team.join_code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert registered(client, mails, team_select="al-bo", new_team_name="", join_code=typed).status_code == 302
    assert [m.username for m in alice.team.members] == ["alice", "carol"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "Enter team al-bo's join code: a member finds it on the team's page."),
        ("   ", "Enter team al-bo's join code"),
        ("AAAA-BBBB-CCCC", "This is not team al-bo's join code: ask a member for the code on the team's page."),
    ],
)
def test_joining_a_team_without_its_code_is_refused(client, alice, code, message):
    """Finding: anyone could join any team with a free place, without the member's consent."""
    before = user_count()
    response = register(client, team_select="al-bo", new_team_name="", join_code=code)
    assert response.status_code == 422
    assert message in text(response)
    assert user_count() == before
    assert accounts.find_user("carol") is None
    assert [m.username for m in alice.team.members] == ["alice"]


def test_another_teams_code_does_not_open_a_team(client, alice):
    other = make_team("other")
    response = register(client, team_select="al-bo", new_team_name="", join_code=other.join_code)
    assert response.status_code == 422
    assert accounts.find_user("carol") is None


def test_every_team_gets_its_own_random_friendly_code(client, app):
    codes = [make_team(f"t{i}").join_code for i in range(20)]
    assert len(set(codes)) == 20
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", c) for c in codes)


def test_join_code_is_shown_to_members_only(client, auth, alice, admin):
    make_user("dave", team="da-ve")
    code = alice.team.join_code
    auth.login()
    assert code in text(client.get("/team/al-bo"))
    assert alice.team.join_code not in text(client.get("/team/da-ve"))
    dave_code = make_team("da-ve").join_code
    assert dave_code not in text(client.get("/team/da-ve"))
    auth.logout()
    auth.login("admin")
    assert code not in text(client.get("/team/al-bo"))


def test_member_renews_the_join_code_and_the_old_one_stops_working(client, auth, alice, mails):
    old = alice.team.join_code
    auth.login()
    response = client.post("/team/al-bo/join_code")
    assert response.status_code == 302
    page = text(client.get("/team/al-bo"))
    assert "new join code" in page
    db.session.expire_all()
    new = alice.team.join_code
    assert new != old and new in page
    auth.logout()
    assert register(client, team_select="al-bo", new_team_name="", join_code=old).status_code == 422
    assert registered(client, mails, team_select="al-bo", new_team_name="", join_code=new).status_code == 302


def test_only_members_renew_a_join_code(client, auth, alice):
    make_user("dave", team="da-ve")
    old = make_team("da-ve").join_code
    auth.login()
    assert client.post("/team/da-ve/join_code").status_code == 403
    assert client.post("/team/nobody/join_code").status_code == 404
    db.session.expire_all()
    assert make_team("da-ve").join_code == old


def test_renewing_the_join_code_needs_the_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    alice = make_user("alice", team="al-bo")
    old = alice.team.join_code
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": "alice", "password": "secret-pw", "csrf_token": token})
    assert client.post("/team/al-bo/join_code").status_code == 400
    db.session.expire_all()
    assert alice.team.join_code == old
    page = client.get("/team/al-bo").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post("/team/al-bo/join_code", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert alice.team.join_code != old


def test_api_me_gives_members_their_join_code(client, alice, admin):
    from tests.factories import api_token

    me = client.get("/api/v1/me", headers=api_token(alice)).get_json()
    assert me["team_join_code"] == alice.team.join_code
    assert client.get("/api/v1/me", headers=api_token(admin)).get_json()["team_join_code"] is None


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
        ({"username": ""}, "Choose a username."),
        ({"username": "ab"}, "A username has 3 to 32 characters: ASCII letters, digits, '_', '.' and '-'."),
        ({"username": "a" * 33}, "A username has 3 to 32 characters"),
        ({"username": "carol smith"}, "A username has 3 to 32 characters"),
        ({"username": "cärol"}, "A username has 3 to 32 characters"),
        ({"username": "саrol"}, "A username has 3 to 32 characters"),  # Cyrillic look-alikes
        ({"username": "carol/../x"}, "A username has 3 to 32 characters"),
        ({"username": "<b>carol</b>"}, "A username has 3 to 32 characters"),
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


def test_usernames_with_allowed_characters_register(client, mails):
    assert registered(client, mails, username="Carol_B.x-1").status_code == 302
    assert accounts.find_user("carol_b.x-1") is not None


def test_logout_by_get_only_asks(client, auth, alice):
    """Finding: GET /logout logged out, so any link or image on another site could."""
    auth.login()
    page = client.get("/logout")
    assert page.status_code == 200
    assert is_logged_in(client)
    assert re.search(r'<form method="post" action="/logout"', page.get_data(as_text=True))
    assert "Log out" in text(page)


def test_logout_needs_the_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    make_user("alice")
    client = app.test_client()
    token_re = r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"'
    token = re.search(token_re, client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "alice", "password": "secret-pw", "csrf_token": token})
    assert is_logged_in(client)
    assert client.post("/logout").status_code == 400
    assert is_logged_in(client)
    nav_token = re.search(token_re, client.get("/index").get_data(as_text=True)).group(1)  # the nav's form
    response = client.post("/logout", data={"csrf_token": nav_token})
    assert response.status_code == 302
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


def test_registration_closed_and_opened_again(client, app, mails):
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
    assert registered(client, mails).status_code == 302
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


def test_a_lecture_hall_behind_one_address_gets_in(make_app):
    """320 students behind one campus NAT log in within a minute (the page and the API): before, successful
    logins spent the address's budget (300 per 5 minutes) and 122 of them were answered 429. Only failures
    count now; guessing from that address is still stopped."""
    app = make_app()  # the default limits
    cheap = generate_password_hash("secret-pw", method="pbkdf2:sha256:1000")  # the hash's cost is not tested here
    db.session.add_all(
        User(
            username=f"student{n:03d}",
            username_canonical=f"student{n:03d}",
            email=f"student{n:03d}@example.org",
            sciper=f"{900000 + n}",
            password_hash=cheap,
        )
        for n in range(320)
    )
    db.session.commit()
    client = app.test_client()
    answers = []
    for number in range(320):
        username = f"student{number:03d}"
        if number % 2:
            answers.append(client.post("/api/v1/tokens", auth=(username, "secret-pw")).status_code)
        else:
            answers.append(client.post("/login", data={"username": username, "password": "secret-pw"}).status_code)
            client.post("/logout")
    assert answers.count(302) == 160 and answers.count(201) == 160  # every one of them got in

    limit = int(app.config["LOGIN_LIMIT_PER_ADDRESS"].split()[0])
    failures = [
        client.post("/login", data={"username": f"student{n % 320:03d}", "password": "guess"}).status_code
        for n in range(limit + 1)
    ]
    assert failures[:limit] == [200] * limit and failures[limit] == 429  # failed guesses still spend the budget
