"""A student registers (confirming through the link the demo writes to its log) and logs in, sees the round and
phase; the admin switches the phase."""

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
