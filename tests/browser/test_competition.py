"""A whole round in the browser: register, defend, generate, download, attack, leaderboard."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest

from tests.browser.conftest import register, screenshot
from tests.browser.test_smoke import login
from tests.conftest import ROOT, SAMPLE_DEFENCE

pytestmark = pytest.mark.browser
# No baseline-attack worker: the privacy estimates (seconds of both cores per defence) are not looked at here.
SITE_ENV = {"SRS_BASELINE_CONCURRENCY": "0"}
FINGERPRINTING = ROOT / "attack_defence_test_scripts" / "fingerprinting.py"
TEAMS = {"ann": ("red-team", "111111"), "ben": ("blue-team", "222222")}


def set_phase(admin, base: str, phase: str) -> None:
    admin.goto(base + "/set_phase/")
    admin.select_option("#phase", phase)
    admin.click("form[action='/set_phase/'] input[type=submit]")
    assert f"The phase is now {phase}" in admin.inner_text("main")


def upload_and_wait(page, url: str, path, shot: str | None = None) -> str:
    page.goto(url)
    page.set_input_files("#file", str(path))
    if shot:
        screenshot(page, shot)
    page.click("input[type=submit][value=Upload]")
    # the form's script sends the file, then opens the status page
    page.wait_for_url(re.compile(r"/submissions/\d+$"), timeout=60_000)
    # the page polls the API and reloads itself when the evaluation ends
    page.wait_for_selector("#status.status-succeeded, #status.status-failed", timeout=180_000)
    status = page.inner_text("#status")
    assert status == "succeeded", page.inner_text("main")
    return page.url


def test_a_whole_round_in_the_browser(browser, live_site, tmp_path):
    base = live_site.url
    admin = browser.new_page()
    login(admin, base, "admin", "admin")
    set_phase(admin, base, "Defence")

    students = {}
    for username, (team, sciper) in TEAMS.items():
        page = browser.new_page()
        register(page, live_site, username, f"{username}-password", sciper, team)
        login(page, base, username, f"{username}-password")
        students[username] = page

    for i, page in enumerate(students.values()):
        upload_and_wait(page, base + "/defence/", SAMPLE_DEFENCE, shot="defence_upload" if i == 0 else None)
        assert "5.730" in page.inner_text("#utility-score")
    screenshot(students["ann"], "defence_result")

    admin.goto(base + "/generate_matches/")
    plan = admin.inner_text("main")
    assert "red-team" in plan and "blue-team" in plan and "al-bo" in plan  # demo teams without defence: left out
    screenshot(admin, "generate_matches")
    admin.click("input[type=submit][value='Generate matches']")
    assert "Round 1 generated" in admin.inner_text("main")
    set_phase(admin, base, "Attack")

    for username, page in students.items():
        page.goto(base + "/attack/")
        with page.expect_download() as info:
            page.click("#download-sets")
        folder = tmp_path / username
        folder.mkdir()
        archive = folder / "sets.zip"
        info.value.save_as(archive)
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            z.extractall(folder)
        (target,) = {re.match(r"team_(\d+)_", n).group(1) for n in names}
        subprocess.run([sys.executable, str(FINGERPRINTING), target], cwd=folder, check=True, timeout=300)
        # the screenshot once the sets are downloaded: the page no longer says they are being prepared
        shot = "attack" if username == "ann" else None
        upload_and_wait(page, base + "/attack/", folder / "my_classification.csv.zip", shot=shot)
        # The cell reads "0.988 ± 0.009": the score, then the half-width of its 95 % confidence interval.
        auc, half_width = re.fullmatch(
            r"([\d.]+) ± ([\d.]+)", page.inner_text("#outcome table tbody tr td:nth-child(4)")
        ).groups()
        assert float(auc) > 0.9 and 0 < float(half_width) < 0.1

    page = students["ann"]
    page.goto(base + "/leaderboard/")
    board = page.inner_text("#leaderboard")
    assert "red-team" in board and "blue-team" in board
    assert page.locator("#tradeoff-plot svg").count() == 1
    assert "red-team" in page.inner_text("#tradeoff-plot") and "blue-team" in page.inner_text("#tradeoff-data")
    screenshot(page, "leaderboard")
    page.goto(base + "/team/red-team")
    screenshot(page, "team")
    page.goto(base + "/")
    screenshot(page, "home_round1")
