"""The whole platform started by ./run-srs.sh on its own database, folders and ports, and a headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest
import redis

from tests.conftest import ROOT, free_port, run_namespace, skip_or_fail
from tests.sites import forget_site, kill_site

pytestmark = pytest.mark.browser
BROWSER_REDIS_URL = os.environ.get("TEST_BROWSER_REDIS_URL", "redis://127.0.0.1:6379/14")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Screenshots go to test-artifacts/ (ignored by git); SRS_SCREENSHOTS=docs/screenshots refreshes the README's.
SCREENSHOTS = ROOT / os.environ.get("SRS_SCREENSHOTS", "test-artifacts/screenshots")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class LiveSite(NamedTuple):
    url: str
    folder: Path  # holds srs.db, uploads/ and logs/
    env: dict[str, str]  # run-srs.sh's environment: a `flask` command with it acts on this site


@pytest.fixture(scope="module")
def live_site(request, tmp_path_factory):
    """./run-srs.sh --demo with its own settings, one per test module; yields where it is, then stops it.
    A module's SITE_ENV (a dict) adds settings of its own."""
    try:
        redis.Redis.from_url(BROWSER_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        skip_or_fail(f"no Redis at {BROWSER_REDIS_URL}")
    base = tmp_path_factory.mktemp("site")
    port = free_port()
    env = {
        **os.environ,
        "SRS_VENV": sys.prefix,
        "SRS_SKIP_INSTALL": "1",
        "DATABASE_URL": f"sqlite:///{base / 'srs.db'}",
        "CELERY_BROKER_URL": BROWSER_REDIS_URL,
        "RESULT_BACKEND": BROWSER_REDIS_URL,
        "REDIS_URL": BROWSER_REDIS_URL,
        "UPLOAD_FOLDER": str(base / "uploads"),
        "TEMPORARY_UPLOAD_FOLDER": str(base / "tmp"),
        "LOG_FOLDER": str(base / "logs"),
        "FLASK_RUN_PORT": str(port),
        "SECRET_KEY": "browser-test-secret",
        "SRS_WORKER_CONCURRENCY": "1",
        "CELERY_TASK_QUEUE": f"{run_namespace()}-browser-{port}",
        "REDIS_KEY_PREFIX": f"{run_namespace()}-browser-{port}:",
        **getattr(request.module, "SITE_ENV", {}),
    }
    log = (base / "run-srs.log").open("wb")
    proc = subprocess.Popen(
        ["bash", str(ROOT / "run-srs.sh"), "--demo"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/login", timeout=2)
            break
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                kill_site(proc)
                log_text = (base / "run-srs.log").read_text()[-4000:]
                raise AssertionError("run-srs.sh did not serve:\n" + log_text) from exc
            time.sleep(0.3)
    yield LiveSite(url, base, env)
    kill_site(proc)
    forget_site(env)


@pytest.fixture(scope="module")
def live_server(live_site):
    """The base URL of the module's live site."""
    return live_site.url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    """Save a screenshot used by the README's user guide."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def confirmation_link(site: LiveSite, email: str, timeout: float = 30) -> str:
    """The confirmation link mailed to email, read where a newcomer without a mail server finds it: the
    platform's log (run-srs.sh's workers write mails there when MAIL_SERVER is unset)."""
    marker = f"mail (no MAIL_SERVER set) to {email}: [SRS] Confirm your registration"
    log = site.folder / "logs" / "srs.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunks = log.read_text().split(marker)[1:] if log.exists() else []
        if chunks:
            return re.search(r"https?://\S+/register/confirm/\S+", chunks[-1]).group(0)
        time.sleep(0.2)
    raise AssertionError(f"no confirmation mail to {email} in {log} after {timeout} s")


def register(page, site: LiveSite, username: str, password: str, sciper: str, team: str, shot: str = "") -> None:
    """Register as a newcomer to the demo does: the form, then the link from the log, then its button."""
    page.goto(site.url + "/register")
    page.fill("#username", username)
    page.fill("#email", f"{username}@example.org")
    page.fill("#password", password)
    page.fill("#password2", password)
    page.fill("#sciper", sciper)
    page.select_option("#team_select", "New team")
    page.fill("#new_team_name", team)
    if shot:
        screenshot(page, shot)
    page.click("input[type=submit]")
    assert "Check your inbox" in page.inner_text("main")
    assert "no mail server set up" in page.inner_text("main")
    page.goto(confirmation_link(site, f"{username}@example.org"))
    page.click("button[type=submit]")
    assert f"Your registration is confirmed: log in as {username}." in page.inner_text("main")
