"""The upload forms' progress bar: a defence sent through a slow connection shows its bytes, percentage and time
left, then lands on its status page; refusals keep the server's message; without JavaScript the form still posts."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_pages import AXE, AXE_OPTIONS, Api, describe, new_page, uniform_attack
from tests.browser.test_smoke import csp_violations, login
from tests.conftest import SAMPLE_DEFENCE

pytestmark = pytest.mark.browser
# No baseline-attack worker: the privacy estimates (seconds of both cores per defence) are not looked at here.
SITE_ENV = {"SRS_BASELINE_CONCURRENCY": "0"}
UPLOAD_BYTES_PER_S = 2 * 1024 * 1024  # the sample defence (7.9 MB) takes about 4 s
MAX_UPLOAD_MB = 32  # the live site's default MAX_UPLOAD_MB
NOT_A_ZIP = "The file is not a zip archive: upload a .zip holding one .csv file."
# Each change of the bar and of the live text, as the page makes it, sent to the test (survives navigations).
RECORD_PROGRESS = """() => {
  const bar = document.querySelector("form[data-upload-progress] progress");
  const text = document.querySelector("form[data-upload-progress] .upload-progress-text");
  new MutationObserver(() => window.recordProgress("bar", bar.getAttribute("value"), bar.max))
    .observe(bar, {attributes: true, attributeFilter: ["value"]});
  const live = document.querySelector("form[data-upload-progress] [aria-live]");
  new MutationObserver(() => window.recordProgress("text", text.textContent, 0))
    .observe(text, {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => window.recordProgress("live", live.textContent, 0))
    .observe(live, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def defence_phase(live_server):
    Api(live_server, "admin").call("PUT", "/competition", json={"phase": "Defence"})


@pytest.fixture
def student(browser, live_server, defence_phase):
    """bob, logged in; the script must run under the Content-Security-Policy without an error."""
    page = new_page(browser)
    problems = csp_violations(page)
    login(page, live_server, "bob", "admin")
    yield page
    page.context.close()
    assert problems == [], problems


@pytest.fixture(scope="module")
def round_1(live_server, defence_phase):
    """Round 1 generated between bob's team and charlie's, in phase Both: bob's attack page has its form."""
    for username in ("bob", "charlie"):
        api = Api(live_server, username)
        items = api.call("GET", "/submissions", params={"per_page": 100}).json()["items"]
        defences = [s for s in items if s["kind"] == "defence"]
        for s in defences:
            if s["status"] in ("queued", "running"):  # sent by an earlier test of the module
                api.wait_succeeded(s["id"])
                break
        else:
            if not any(s["status"] == "succeeded" for s in defences):
                api.wait_succeeded(api.upload("defences", SAMPLE_DEFENCE.name, SAMPLE_DEFENCE.read_bytes()))
    admin = Api(live_server, "admin")
    admin.call("POST", "/rounds", 201, json={"round": 1})
    admin.call("PUT", "/competition", json={"phase": "Both"})


def throttle(page, bytes_per_s: int) -> None:
    """Limit the page's upload speed, as a student's home connection would."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": bytes_per_s},
    )


def over_the_limit(folder):
    """A file 1 MB over the live site's limit (sparse: nothing is written to disk)."""
    big = folder / "big.zip"
    with big.open("wb") as f:
        f.truncate((MAX_UPLOAD_MB + 1) * 1024 * 1024)
    return big


def posts_to(page, path: str) -> list[str]:
    """The POST requests the page will send to path (filled as they happen)."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith(path) else None)
    return sent


def assert_accessible_now(page, state: str) -> None:
    violations = AXE.run(page, options=AXE_OPTIONS).response["violations"]
    assert not violations, f"upload form {state}: {describe(violations)}"


def test_a_throttled_upload_shows_its_progress_then_the_result(student, live_server):
    seen: list[tuple[str, object, object]] = []
    student.expose_function("recordProgress", lambda kind, value, top: seen.append((kind, value, top)))
    student.goto(live_server + "/defence/")
    assert student.locator(".upload-progress").is_hidden()
    student.evaluate(RECORD_PROGRESS)
    throttle(student, UPLOAD_BYTES_PER_S)
    student.set_input_files("#file", str(SAMPLE_DEFENCE))
    started = time.monotonic()
    student.click("input[type=submit][value=Upload]")
    student.locator("#upload-progress-text", has_text="left").wait_for()
    assert student.is_disabled("input[type=submit][value=Upload]"), "a second click would send the file again"
    screenshot(student, "defence_upload_progress")
    student.wait_for_url(re.compile(r"/submissions/\d+$"), timeout=60_000)
    elapsed = time.monotonic() - started

    values = [float(v) for kind, v, top in seen if kind == "bar" and v is not None and float(v) < float(top)]
    rises = sum(1 for before, after in zip(values, values[1:], strict=False) if after > before)
    texts = [v for kind, v, _ in seen if kind == "text"]
    announced = [v for kind, v, _ in seen if kind == "live"]
    print(
        f"{SAMPLE_DEFENCE.stat().st_size} bytes at {UPLOAD_BYTES_PER_S} B/s in {elapsed:.1f} s: "
        f"{len(values)} bar updates, {rises} rises, texts {texts}, announced {announced}"
    )
    assert rises >= 2, f"the bar moved {rises} times before the end: {values}"
    assert any(re.fullmatch(r"[\d.]+ MB of [\d.]+ MB sent \(\d+ %\), about \d+ s left", t) for t in texts), texts
    assert announced[0] == "Starting the upload…" and "Sent. The platform is checking the file…" in announced
    assert set(announced) <= set(texts), "screen readers hear what is shown"
    assert elapsed > SAMPLE_DEFENCE.stat().st_size / UPLOAD_BYTES_PER_S * 0.8, "the connection was not throttled"

    student.wait_for_selector("#status.status-succeeded, #status.status-failed", timeout=180_000)
    assert student.inner_text("#status") == "succeeded", student.inner_text("main")
    assert "5.730" in student.inner_text("#utility-score")


def test_a_file_over_the_limit_is_refused_before_it_is_sent(student, live_server, tmp_path):
    big = over_the_limit(tmp_path)
    student.goto(live_server + "/defence/")
    posted = posts_to(student, "/defence/")
    student.set_input_files("#file", str(big))
    message = f"This file is {MAX_UPLOAD_MB + 1}.0 MB, larger than the {MAX_UPLOAD_MB}.0 MB the platform accepts"
    assert message in student.inner_text(".has-error .error")
    student.click("input[type=submit][value=Upload]")
    assert student.locator(".upload-progress").is_hidden()
    assert not posted, "the oversize file was sent"
    assert_accessible_now(student, "refusing an oversize file")


def test_the_servers_own_size_refusal_is_shown(student, live_server, tmp_path):
    """A page whose limit is out of date (here: rewritten on its way) sends the file; the server's 413 is shown."""
    big = over_the_limit(tmp_path)

    def stale_limit(route):
        if route.request.method != "GET":
            return route.continue_()
        page = route.fetch()
        return route.fulfill(response=page, body=page.text().replace('data-max-bytes="', 'data-max-bytes="9'))

    student.route("**/defence/", stale_limit)
    student.goto(live_server + "/defence/")
    student.set_input_files("#file", str(big))
    with student.expect_response(lambda r: r.request.method == "POST") as answer:
        student.click("input[type=submit][value=Upload]")
    assert answer.value.status == 413
    student.locator("h1", has_text="Error 413").wait_for()
    assert f"The file is larger than {MAX_UPLOAD_MB} MB: compress or trim it." in student.inner_text("main")
    assert student.title().startswith("Error 413")


def test_a_refused_upload_shows_the_servers_message(student, live_server, tmp_path):
    bad = tmp_path / "defence.zip"
    bad.write_text("cell_id,rep,direction_size,timestamp\n")  # a CSV, not zipped
    student.goto(live_server + "/defence/")
    student.set_input_files("#file", str(bad))
    with student.expect_response(lambda r: r.request.method == "POST") as answer:
        student.click("input[type=submit][value=Upload]")
    assert answer.value.status == 422
    assert answer.value.request.resource_type == "xhr", "the form was not sent by the progress script"
    error = student.locator(".has-error .error")
    error.wait_for()
    assert error.inner_text() == NOT_A_ZIP
    assert student.url == live_server + "/defence/"
    assert student.is_enabled("input[type=submit][value=Upload]")
    assert student.evaluate("document.activeElement.id") == "file", "the field to fix has the focus"
    assert_accessible_now(student, "after a refused upload")


def test_cancel_stops_the_upload(student, live_server):
    student.goto(live_server + "/defence/")
    throttle(student, 256 * 1024)
    student.set_input_files("#file", str(SAMPLE_DEFENCE))
    student.click("input[type=submit][value=Upload]")
    student.locator("#upload-progress-text", has_text="sent").wait_for()
    assert student.evaluate("document.activeElement.id") == "upload-cancel"
    student.keyboard.press("Enter")
    student.locator("#upload-progress-text", has_text="Upload cancelled").wait_for()
    assert student.is_enabled("input[type=submit][value=Upload]")
    assert student.is_disabled("#upload-cancel")
    assert student.evaluate("document.activeElement.value") == "Upload", "the keyboard is back on the form"
    assert_accessible_now(student, "after a cancelled upload")


def test_without_javascript_the_form_still_uploads(browser, live_server, defence_phase, tmp_path):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        login(page, live_server, "charlie", "admin")
        page.goto(live_server + "/defence/")
        assert page.locator(".upload-progress").is_hidden()
        page.set_input_files("#file", str(SAMPLE_DEFENCE))
        with page.expect_request(lambda r: r.method == "POST") as sent:
            page.click("input[type=submit][value=Upload]")
        assert sent.value.resource_type == "document"
        assert re.search(r"/submissions/\d+$", page.url)
        assert page.inner_text("#status") in ("queued", "running", "succeeded")
    finally:
        context.close()


def test_the_attack_form_sends_with_progress_and_keeps_refusals(student, live_server, round_1, tmp_path):
    bad = tmp_path / "classification.zip"
    bad.write_text("team_id,capture_id\n")
    student.goto(live_server + "/attack/")
    student.set_input_files("#file", str(bad))
    with student.expect_response(lambda r: r.request.method == "POST") as answer:
        student.click("input[type=submit][value=Upload]")
    assert (answer.value.status, answer.value.request.resource_type) == (422, "xhr")
    student.locator(".has-error .error", has_text=NOT_A_ZIP).wait_for()
    assert "Attack — round 1" in student.inner_text("h1")

    bob = Api(live_server, "bob")
    good = tmp_path / "classification.csv.zip"
    good.write_bytes(uniform_attack(bob, bob.call("GET", "/competition").json()["nb_classes"]))
    student.set_input_files("#file", str(good))
    with student.expect_request(lambda r: r.method == "POST") as sent:
        student.click("input[type=submit][value=Upload]")
    assert sent.value.resource_type == "xhr"
    student.wait_for_url(re.compile(r"/submissions/\d+$"))
    assert student.inner_text("#status") in ("queued", "running", "succeeded")
