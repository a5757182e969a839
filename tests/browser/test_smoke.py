"""The basics in Chromium: a student registers (confirming through the link the demo writes to its log) and logs
in, sees the round and phase; the admin switches the phase; every page loads under the Content-Security-Policy
without a violation; logout is a POST."""

from __future__ import annotations

import pytest

from tests.browser.conftest import register, screenshot

pytestmark = pytest.mark.browser


def login(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("input[type=submit]")


def test_register_login_and_see_round_and_phase(page, live_site):
    live_server = live_site.url
    register(page, live_site, "zoe", "zoe-password", "123456", "zoe-team", shot="register")
    login(page, live_server, "zoe", "zoe-password")
    assert page.inner_text("#banner-round") == "0"
    assert page.inner_text("#banner-phase") == "None"
    assert "Hi, zoe!" in page.inner_text("h1")
    assert "Set Phase" not in page.inner_text("nav")


def test_admin_switches_phase_and_students_see_it(browser, live_server):
    admin = browser.new_page()
    login(admin, live_server, "admin", "admin")
    admin.goto(live_server + "/set_phase/")
    admin.select_option("#phase", "Defence")
    admin.click("form[action='/set_phase/'] input[type=submit]")
    assert "The phase is now Defence" in admin.inner_text("main")
    screenshot(admin, "set_phase")
    student = browser.new_page()
    login(student, live_server, "alice", "admin")
    assert student.inner_text("#banner-phase") == "Defence"
    screenshot(student, "home")
    admin.close()
    student.close()


# --- the Content-Security-Policy and logout --------------------------------------------------------------------------

ANONYMOUS_PAGES = ["/login", "/register"]
STUDENT_PAGES = [
    "/index",
    "/leaderboard/",
    "/leaderboard/?view=overall",
    "/user/alice",
    "/team/al-bo",
    "/team/cha-di",
    "/defence/",
    "/attack/",
    "/logout",
    "/no-such-page",
]
ADMIN_PAGES = ["/index", "/set_phase/", "/generate_matches/", "/leaderboard/", "/team/al-bo"]


def csp_violations(page) -> list[str]:
    """Collect what Chromium reports: console messages about the policy, and script errors."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: found.append(f"page error: {e}"))
    return found


def visit(page, base: str, paths: list[str]) -> None:
    for path in paths:
        response = page.goto(base + path)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("load")


def test_the_detector_sees_a_violation(page, live_server):
    """Control: an inline style the policy refuses is reported, so an empty list below means something."""
    found = csp_violations(page)
    page.goto(live_server + "/login")
    page.evaluate("document.querySelector('h1').setAttribute('style', 'color: red')")
    page.wait_for_timeout(200)
    assert any("style" in text for text in found), found


def test_pages_load_without_csp_violations(browser, live_server):
    for who, paths in [(None, ANONYMOUS_PAGES), ("alice", STUDENT_PAGES), ("admin", ADMIN_PAGES)]:
        context = browser.new_context()
        page = context.new_page()
        found = csp_violations(page)
        if who:
            login(page, live_server, who, "admin")
        visit(page, live_server, paths)
        context.close()
        assert found == [], f"{who or 'anonymous'}: {found}"


def test_own_team_is_highlighted_by_the_static_script(page, live_server):
    found = csp_violations(page)
    login(page, live_server, "alice", "admin")
    page.goto(live_server + "/leaderboard/")
    own = page.locator("#leaderboard tr.own-team")
    assert own.count() == 1
    assert "al-bo" in own.inner_text()
    assert found == []


def test_logout_button_in_the_nav_logs_out_and_a_get_only_asks(page, live_server):
    login(page, live_server, "alice", "admin")
    page.goto(live_server + "/logout")
    assert "Log out of alice's account" in page.inner_text("main")
    page.goto(live_server + "/index")
    assert "Hi, alice!" in page.inner_text("h1")  # the GET did not log out
    page.click("nav .nav-logout button")
    assert "You are logged out." in page.inner_text("main")
    page.goto(live_server + "/index")
    assert page.url.startswith(live_server + "/login")
