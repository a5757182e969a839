"""Home, profile and team pages, the navigation, the banner and the error pages."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import make_submission, make_user


def text(fragment: str) -> str:
    """HTML as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def page_text(response) -> str:
    return text(response.get_data(as_text=True))


def element(response, tag: str, attribute: str) -> str:
    """The inner HTML of the first <tag ...attribute...>, e.g. element(r, "nav", 'aria-label="Main"')."""
    found = re.search(rf"<{tag}[^>]*{attribute}[^>]*>(.*?)</{tag}>", response.get_data(as_text=True), re.S)
    assert found, f"no <{tag} {attribute}> on the page"
    return found.group(1)


def banner(response) -> str:
    return text(element(response, "div", 'id="competition-banner"'))


def nav_links(response) -> list[str]:
    """The nav's links and buttons (logout is a button: it posts a form)."""
    nav = element(response, "nav", 'aria-label="Main"')
    return [text(a) for a in re.findall(r"<(?:a|button)\b[^>]*>(.*?)</(?:a|button)>", nav, re.S)]


@pytest.mark.parametrize("path", ["/", "/index"])
def test_home_sends_anonymous_users_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path]


@pytest.mark.parametrize("path", ["/", "/index"])
def test_home_greets_a_logged_in_student(client, auth, alice, path):
    auth.login()
    response = client.get(path)
    assert response.status_code == 200
    assert "Hi, alice!" in page_text(response)
    assert "Your team: al-bo" in page_text(response)


def test_banner_shows_round_and_phase(client, auth, alice):
    auth.login()
    shown = banner(client.get("/index"))
    assert "Round 0" in shown
    assert "Phase None" in shown
    assert "Registration closed" not in shown


def test_banner_is_on_anonymous_pages_too(client):
    shown = banner(client.get("/login"))
    assert "Round 0" in shown and "Phase None" in shown


def test_navigation_of_a_student(client, auth, app, alice):
    auth.login()
    links = nav_links(client.get("/index"))
    assert {"Home", "Profile", "Logout (alice)"} <= set(links)
    assert ("Leaderboard" in links) == ("leaderboard.show" in app.view_functions)
    assert "Set Phase" not in links
    assert "Login" not in links and "Register" not in links


def test_navigation_of_an_admin(client, auth, app, admin):
    auth.login("admin")
    links = nav_links(client.get("/index"))
    assert {"Home", "Profile", "Set Phase", "Logout (admin)"} <= set(links)
    assert ("Leaderboard" in links) == ("leaderboard.show" in app.view_functions)


def test_navigation_of_an_anonymous_visitor(client):
    links = nav_links(client.get("/login"))
    assert {"Home", "Login", "Register"} <= set(links)
    assert "Profile" not in links and "Set Phase" not in links


def test_profile_link_leads_to_the_users_page(client, auth, alice):
    auth.login()
    nav = element(client.get("/index"), "nav", 'aria-label="Main"')
    assert 'href="/user/alice"' in nav


def test_user_page(client, auth, alice):
    make_user("bob", team="al-bo")
    auth.login()
    own = client.get("/user/alice")
    assert own.status_code == 200
    assert "Team: al-bo" in page_text(own)
    assert "E-mail: alice@example.org" in page_text(own)
    other = client.get("/user/bob")
    assert other.status_code == 200
    assert "Team: al-bo" in page_text(other)
    assert "bob@example.org" not in page_text(other)


def test_user_page_of_an_unknown_user_is_404(client, auth, alice):
    auth.login()
    response = client.get("/user/nobody")
    assert response.status_code == 404
    assert "Error 404" in page_text(response)


def test_team_page_lists_members(client, auth, alice):
    make_user("bob", team="al-bo")
    auth.login()
    response = client.get("/team/al-bo")
    assert response.status_code == 200
    members = text(element(response, "ul", ""))
    assert members == "alice bob"


def test_team_page_of_an_unknown_team_is_404(client, auth, alice):
    auth.login()
    assert client.get("/team/no-such-team").status_code == 404


@pytest.mark.parametrize(
    ("viewer", "sees_history"), [("alice", True), ("bob", True), ("charlie", False), ("admin", True)]
)
def test_team_history_only_for_members_and_admins(client, auth, alice, admin, viewer, sees_history):
    bob = make_user("bob", team="al-bo")
    make_user("charlie", team="cha-di")
    make_submission(alice.team, bob, filename="secret-defence.zip")
    auth.login(viewer)
    shown = page_text(client.get("/team/al-bo"))
    assert "alice" in shown  # every viewer sees the members
    assert ("Submission history" in shown) == sees_history
    assert ("secret-defence.zip" in shown) == sees_history


def test_404_page_is_html(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Error 404" in page_text(response)
    assert "Traceback" not in response.get_data(as_text=True)


def test_405_page_is_html(client):
    response = client.post("/index")
    assert response.status_code == 405
    assert response.mimetype == "text/html"
    assert "Error 405" in page_text(response)
    assert "This method is not allowed here." in page_text(response)
