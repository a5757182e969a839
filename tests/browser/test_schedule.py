"""The admin schedules a phase change a few seconds ahead; a student sees the countdown, then the change."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_smoke import login

pytestmark = pytest.mark.browser
# The beat checks the timeline every 2 s instead of every 15 s: the change is applied within 2 s of its time.
SITE_ENV = {"SCHEDULE_POLL_SECONDS": "2"}


def test_scheduled_phase_change_counts_down_and_happens(browser, live_server):
    admin = browser.new_page()
    admin.set_default_timeout(20_000)
    login(admin, live_server, "admin", "admin")
    admin.goto(live_server + "/admin/schedule")
    due = (datetime.now(UTC) + timedelta(seconds=12)).replace(microsecond=0, tzinfo=None)
    admin.select_option("#action", "phase")
    admin.select_option("#phase", "Attack")
    admin.fill("#due_at", due.strftime("%Y-%m-%dT%H:%M:%S"))
    admin.click("#schedule-form input[type=submit]")
    assert "Planned: Phase → Attack" in admin.inner_text("main")

    student = browser.new_page()
    student.set_default_timeout(20_000)
    login(student, live_server, "alice", "admin")
    assert student.inner_text("#banner-phase") == "None"
    assert student.inner_text("#next-change-label") == "Phase → Attack"
    assert student.get_attribute("#next-change-time", "datetime") == due.isoformat() + "Z"
    assert "UTC" in student.inner_text("#next-change-time")
    # The deferred script adds the local time and the countdown; the locator assertions wait for it
    # (inner_text right after the login's navigation may read the page before the script has run).
    expect(student.locator("#next-change")).to_contain_text("your time")
    expect(student.locator("#next-change-countdown")).to_have_text(re.compile(r"^in 00:00:(0\d|1[0-2])$"))
    screenshot(student, "deadline_countdown")
    # The beat applies it within its poll period; the page notices and reloads by itself.
    # (a locator assertion, not wait_for_function: the page's CSP forbids evaluating strings as script)
    expect(student.locator("#banner-phase")).to_have_text("Attack", timeout=60_000)
    assert "Attack" in student.inner_text("nav")
    admin.close()
    student.close()
