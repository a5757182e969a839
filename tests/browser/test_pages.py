"""Every page in Chromium: axe-core finds no WCAG 2.1 A or AA violation on any page, logged out, as a student, as
staff; and the figures (a defence's heat map, an attack's ROC curve and top-k accuracy, a team's path, the real
attackers' heat map once the round closed) are drawn at a real size with their titles and tables, in light and dark.
One live site and one competition for all of them. SRS_SCREENSHOTS=docs/screenshots refreshes the docs' pictures.

Every GET route of app/routes/ that renders HTML is visited (some in several states). Left out, on purpose:
- downloads, not pages: /attack/?download=1, /admin/exports/<name>.csv, /admin/audit.csv,
  /admin/submissions/<id>/files/<which>; JSON: /api/v1/* (but /api/v1/docs), /healthz; /static/*;
- POST-only routes (/logout's POST, /set_registration/, /close_round/<n>, re-runs, deletes, expiries, join codes):
  they redirect to pages covered here; flash messages and field errors are checked after sending forms;
- logged out, every page but those listed in LOGGED_OUT redirects to /login (the home page, the leaderboard...);
- /index is / under another name; paginated pages are checked on their first page.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import zipfile
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from sklearn.ensemble import ExtraTreesClassifier

from app.evaluation.baseline import load_test, load_train
from app.evaluation.features import extract_features
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_smoke import login
from tests.conftest import ROOT, SAMPLE_DEFENCE

pytestmark = pytest.mark.browser
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
AXE = Axe()
FAR_FUTURE = "2099-01-01T00:00"
NODES_SHOWN = 3

# (page name, path, expected HTTP status); {braces} are filled from the `competition` fixture.
LOGGED_OUT = [
    ("login", "/login", 200),
    ("register", "/register", 200),
    ("forgot password", "/forgot-password", 200),
    ("reset password, bad link", "/reset-password/not-a-token", 400),
    ("API docs", "/api/v1/docs", 200),
    ("not found", "/no-such-page", 404),
]
STUDENT = [  # alice, of team al-bo
    ("home", "/", 200),
    ("own profile", "/user/alice", 200),
    ("another's profile", "/user/charlie", 200),
    ("own team", "/team/al-bo", 200),
    ("a target team", "/team/cha-di", 200),
    ("a team without defence", "/team/eu-fra", 200),
    ("defence upload", "/defence/", 200),
    ("attack", "/attack/", 200),
    ("defence submission", "/submissions/{defence}", 200),
    ("attack submission", "/submissions/{attack}", 200),
    ("leaderboard", "/leaderboard/", 200),
    ("leaderboard round 1", "/leaderboard/?round=1", 200),
    ("leaderboard overall", "/leaderboard/?view=overall", 200),
    ("password change", "/reset-password/{reset_token}", 200),
    ("logout confirmation", "/logout", 200),
    ("API docs", "/api/v1/docs", 200),
    ("forbidden", "/admin/", 403),
    ("no such team", "/team/no-such-team", 404),
]
STAFF = [  # admin
    ("home", "/", 200),
    ("set phase", "/set_phase/", 200),
    ("generate matches", "/generate_matches/", 200),
    ("dashboard teams", "/admin/", 200),
    ("dashboard teams search", "/admin/?q=al", 200),
    ("dashboard submissions", "/admin/submissions/", 200),
    ("dashboard submissions filtered", "/admin/submissions/?kind=defence&status=succeeded", 200),
    ("dashboard defence submission", "/admin/submissions/{defence}", 200),
    ("dashboard attack submission", "/admin/submissions/{attack}", 200),
    ("dashboard rescore", "/admin/rescore/", 200),
    ("dashboard reference", "/admin/reference", 200),
    ("dashboard exports", "/admin/exports/", 200),
    ("dashboard similarity", "/admin/similarity/?round=1", 200),
    ("dashboard similarity every pair", "/admin/similarity/?round=1&all=1", 200),
    ("timeline", "/admin/schedule", 200),
    ("timeline edit", "/admin/schedule/{action}/edit", 200),
    ("audit log", "/admin/audit", 200),
    ("announcements", "/admin/announcements", 200),
    ("a team", "/team/al-bo", 200),
    ("a profile", "/user/bob", 200),
    ("leaderboard round 1", "/leaderboard/?round=1", 200),
    ("leaderboard overall", "/leaderboard/?view=overall", 200),
]
# (role, page name, path, expected HTTP status) of a competition that has not started: round 0, no upload.
BEFORE_ROUND_1 = [
    ("student", "home", "/", 200),
    ("student", "leaderboard", "/leaderboard/", 200),
    ("student", "own team", "/team/al-bo", 200),
    ("staff", "generate matches", "/generate_matches/", 200),
    ("staff", "dashboard teams", "/admin/", 200),
    ("staff", "dashboard submissions", "/admin/submissions/", 200),
    ("staff", "dashboard rescore", "/admin/rescore/", 200),
    ("staff", "timeline", "/admin/schedule", 200),
]
# ... and of one between phases: phase None, registration closed (409: the upload pages say it is closed).
CLOSED = [
    ("logged out", "registration closed", "/register", 200),
    ("student", "defence closed", "/defence/", 409),
    ("student", "attack closed", "/attack/", 409),
]


def describe(violations: list[dict]) -> str:
    """Each violation with what a developer needs to fix it: rule, impact, help, where, and why for the first node."""
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"][:NODES_SHOWN]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
        if len(v["nodes"]) > NODES_SHOWN:
            lines.append(f"    ... and {len(v['nodes']) - NODES_SHOWN} more")
        summary = " ".join(v["nodes"][0].get("failureSummary", "").split())
        if summary:
            lines.append(f"    first: {summary}")
    return "\n".join(lines)


def assert_accessible(page, base: str, role: str, name: str, path: str, status: int) -> None:
    response = page.goto(base + path)
    answered = response.status if response else None
    assert answered == status, f"{name} ({path}) answered {answered}"
    assert urlsplit(page.url).path == urlsplit(path).path, f"{name} ({path}) went to {page.url}"
    violations = AXE.run(page, options=AXE_OPTIONS).response["violations"]
    assert not violations, (
        f"{name} ({path}) as {role}: {len(violations)} WCAG 2.1 A/AA violations\n{describe(violations)}"
    )


# --- the competition every page is seen in -------------------------------------------------------------------------


class Api:
    """The JSON API as one user (sets the stage faster than clicking through it)."""

    def __init__(self, base: str, username: str, password: str = "admin") -> None:
        self.base = base + "/api/v1"
        answer = requests.post(self.base + "/tokens", auth=(username, password), timeout=30)
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['token']}"}

    def call(self, method: str, path: str, expected: int = 200, **kwargs) -> requests.Response:
        answer = requests.request(method, self.base + path, headers=self.headers, timeout=60, **kwargs)
        assert answer.status_code == expected, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer

    def upload(self, kind: str, name: str, content: bytes) -> int:
        answer = self.call("POST", f"/{kind}", 202, files={"file": (name, content, "application/zip")})
        return answer.json()["submission_id"]

    def wait_succeeded(self, submission_id: int) -> None:
        deadline = time.monotonic() + 240
        while True:
            status = self.call("GET", f"/submissions/{submission_id}").json()
            if status["status"] in ("succeeded", "failed"):
                assert status["status"] == "succeeded", status
                return
            assert time.monotonic() < deadline, f"submission {submission_id} still {status['status']}"
            time.sleep(0.5)

    def wait_baseline(self, submission_id: int) -> None:
        """Wait for the baseline attack on an accepted defence (its heat map is on the defence's page)."""
        deadline = time.monotonic() + 300
        while True:
            status = self.call("GET", f"/submissions/{submission_id}").json()["baseline"]["status"]
            if status in ("succeeded", "failed"):
                assert status == "succeeded", f"the baseline attack on submission {submission_id} failed"
                return
            assert time.monotonic() < deadline, f"the baseline attack on submission {submission_id} is still {status}"
            time.sleep(1)


def uniform_attack(api: Api, nb_classes: int) -> bytes:
    """A classification of every test capture of the student's targets, equal probabilities for every class."""
    with zipfile.ZipFile(io.BytesIO(api.call("GET", "/attack/sets").content)) as sets:
        tests = [n for n in sets.namelist() if n.endswith("_test.csv.zip")]
        frames = []
        for name in tests:
            team_id = int(name.split("_")[1])
            captures = pd.read_csv(io.BytesIO(sets.read(name)), compression="zip")["capture_id"].unique()
            probabilities = {f"proba_class_{k}": 1 / nb_classes for k in range(1, nb_classes + 1)}
            frames.append(pd.DataFrame({"team_id": team_id, "capture_id": captures, **probabilities}))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("classification.csv", pd.concat(frames).to_csv(index=False))
    return out.getvalue()


def trained_attack(api: Api, nb_classes: int) -> bytes:
    """A real (small) attack: extra trees fitted on each target's train set, probabilities for its test set."""
    frames = []
    with zipfile.ZipFile(io.BytesIO(api.call("GET", "/attack/sets").content)) as sets:
        for name in sorted(n for n in sets.namelist() if n.endswith("_test.csv.zip")):
            team_id = int(name.split("_")[1])
            train = pd.read_csv(io.BytesIO(sets.read(name.replace("_test", "_train"))), compression="zip")
            train_rows, train_cells = load_train(train)
            ids, test_rows = load_test(pd.read_csv(io.BytesIO(sets.read(name)), compression="zip"))
            model = ExtraTreesClassifier(n_estimators=40, random_state=0, n_jobs=1)
            model.fit(extract_features(train_rows), train_cells)
            proba = np.zeros((len(ids), nb_classes))
            proba[:, model.classes_ - 1] = model.predict_proba(extract_features(test_rows))
            frame = pd.DataFrame(proba, columns=[f"proba_class_{k}" for k in range(1, nb_classes + 1)])
            frame.insert(0, "capture_id", ids)
            frame.insert(0, "team_id", team_id)
            frames.append(frame)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("classification.csv", pd.concat(frames).to_csv(index=False))
    return out.getvalue()


def reset_token(site, username: str) -> str:
    """A password-reset link's token, made by the site's own code against its database."""
    code = (
        "from app import create_app\n"
        "from app.services import accounts, password_reset\n"
        "with create_app().app_context():\n"
        f"    print(password_reset.make_token(accounts.find_user({username!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=site.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def new_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


@contextmanager
def browsing_as(browser, base: str, username: str | None):
    """A page of its own browser context, logged in as username (None: logged out), closed afterwards."""
    page = new_page(browser)
    if username:
        login(page, base, username, "admin")
    try:
        yield page
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def logged_out(browser, live_server):
    with browsing_as(browser, live_server, None) as page:
        yield page


@pytest.fixture(scope="module")
def student(browser, live_server):
    with browsing_as(browser, live_server, "alice") as page:
        yield page


@pytest.fixture(scope="module")
def staff(browser, live_server):
    with browsing_as(browser, live_server, "admin") as page:
        yield page


@pytest.fixture
def before_round_1(live_server):
    """The demo as run-srs.sh --demo left it; pytest runs tests in file order, so these come before `competition`."""
    state = Api(live_server, "admin").call("GET", "/competition").json()
    assert state["round"] == 0, "keep the tests of the competition before round 1 above those that start it"


@pytest.fixture(scope="module")
def competition(live_site, staff) -> dict:
    """Round 1 under way in phase Both: two teams defended (the baseline attack's estimates in), alice attacked
    with a trained model, a change planned, an announcement shown."""
    base = live_site.url
    admin = Api(base, "admin")
    admin.call("PUT", "/competition", json={"phase": "Both"})
    alice, charlie = Api(base, "alice"), Api(base, "charlie")
    sample = SAMPLE_DEFENCE.read_bytes()
    defences = {
        name: api.upload("defences", SAMPLE_DEFENCE.name, sample)
        for name, api in (("alice", alice), ("charlie", charlie))
    }
    for name, api in (("alice", alice), ("charlie", charlie)):
        api.wait_succeeded(defences[name])
        api.wait_baseline(defences[name])  # the defence page then draws where it leaks
    admin.call("POST", "/rounds", 201, json={"round": 1})
    nb_classes = alice.call("GET", "/competition").json()["nb_classes"]
    attack = alice.upload("attacks", "classification.csv.zip", trained_attack(alice, nb_classes))
    alice.wait_succeeded(attack)
    action = admin.call(
        "POST", "/schedule", 201, json={"action": "phase", "value": "Attack", "due_at": FAR_FUTURE + ":00Z"}
    ).json()["id"]
    staff.goto(base + "/admin/announcements")
    staff.fill("#title", "Round 1 is open")
    staff.fill("#body", "Download your targets' sets from the Attack page.")
    staff.fill("#expires_at", FAR_FUTURE)
    staff.click("input[type=submit][value='Publish and e-mail the students']")
    assert "Announcement published" in staff.inner_text("main")
    return {
        "defence": defences["alice"],
        "defences": defences,
        "attack": attack,
        "action": action,
        "reset_token": reset_token(live_site, "alice"),
        "admin": admin,
    }


@pytest.fixture
def closed_competition(competition):
    """Phase None and registration closed for one test, then back as they were."""
    admin = competition["admin"]
    admin.call("PUT", "/competition", json={"phase": "None", "registration_open": False})
    yield
    admin.call("PUT", "/competition", json={"phase": "Both", "registration_open": True})


# --- the guard, every page -----------------------------------------------------------------------------------------


def ids(pages):
    return [p[0] for p in pages]


@pytest.mark.parametrize(("name", "path", "status"), LOGGED_OUT, ids=ids(LOGGED_OUT))
def test_logged_out_page_is_accessible(logged_out, live_server, name, path, status):
    assert_accessible(logged_out, live_server, "a visitor", name, path, status)


@pytest.mark.parametrize(
    ("role", "name", "path", "status"), BEFORE_ROUND_1, ids=[f"{p[0]} {p[1]}" for p in BEFORE_ROUND_1]
)
def test_page_before_round_1_is_accessible(request, before_round_1, live_server, role, name, path, status):
    assert_accessible(request.getfixturevalue(role), live_server, role, name, path, status)


@pytest.mark.parametrize(("name", "path", "status"), STUDENT, ids=ids(STUDENT))
def test_student_page_is_accessible(student, competition, live_server, name, path, status):
    assert_accessible(student, live_server, "a student", name, path.format(**competition), status)


@pytest.mark.parametrize(("name", "path", "status"), STAFF, ids=ids(STAFF))
def test_staff_page_is_accessible(staff, competition, live_server, name, path, status):
    assert_accessible(staff, live_server, "staff", name, path.format(**competition), status)


# --- the figures of round 1 ----------------------------------------------------------------------------------------


# Drawn on the pages of round 1; the last test of the file closes the round and looks at the defender's page again.
WEIGHTS: dict[str, int] = {}  # page -> bytes of its HTML, printed at the end (run with -s to read them)
MAX_PAGE_BYTES = 250_000


@pytest.fixture(scope="module", autouse=True)
def page_weights():
    yield
    for name, size in WEIGHTS.items():
        print(f"page weight: {name}: {size:,} bytes of HTML")


def weigh(page, base: str, name: str, path: str) -> None:
    """The page's HTML as the server sends it (the figures are inline SVG: they are in it), kept small."""
    size = len(page.request.get(base + path).body())
    WEIGHTS[name] = size
    assert size < MAX_PAGE_BYTES, f"{name} weighs {size:,} bytes"


def drawn(page, selector: str) -> dict:
    """The SVG's box in the page and its accessible name, asserting it is drawn at a real size."""
    svg = page.locator(selector)
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 200, f"{selector} is not drawn: {box}"
    assert svg.get_attribute("role") == "img"
    title = svg.locator("title").first.text_content()
    assert title, f"{selector} has no title"
    return {"box": box, "title": title}


def save(page, selector: str, name: str) -> None:
    """A screenshot of one part of the page, for the docs."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(selector).screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_the_defence_page_shows_where_the_baseline_attack_recognises_the_cells(student, competition, live_server):
    submission = competition["defences"]["alice"]
    path = f"/submissions/{submission}"
    assert_accessible(student, live_server, "a student", "defence with its heat map", path, 200)
    weigh(student, live_server, "defence (baseline heat map)", path)
    found = drawn(student, f"#leak-{submission}")
    assert "baseline attack" in found["title"]
    # One square per cell, each with its number and its percentage written in it.
    assert student.locator(f"#leak-{submission} g.cell").count() == 100
    assert student.locator(f"#leak-{submission} g.exposed").count() == 5
    assert "Most exposed cells: cell" in student.inner_text("#leakage")
    assert student.locator("#leakage table.grid-table td").count() == 100
    save(student, "#leakage", "figure_heatmap")


def test_the_attack_page_shows_the_roc_curve_and_top_k(student, competition, live_server):
    submission = competition["attack"]
    assert_accessible(student, live_server, "a student", "attack with its curves", f"/submissions/{submission}", 200)
    weigh(student, live_server, "attack (ROC and top-k)", f"/submissions/{submission}")
    roc = drawn(student, f"#roc-{submission}")
    assert "micro-averaged" in roc["title"]
    legend = student.locator(f"#roc-{submission} g.legend").first.text_content()
    assert "micro AUC" in legend
    topk = drawn(student, f"#topk-{submission}")
    assert topk["title"] == "Top-k accuracy"
    assert "k = 10" in student.inner_text("#topk-data")
    assert "TPR at FPR 0.01" in student.inner_text("#roc-data")
    save(student, "#curves", "figure_roc_topk")


def test_the_team_page_shows_the_path_over_the_rounds(student, competition, live_server):
    assert_accessible(student, live_server, "a student", "team with its path", "/team/al-bo", 200)
    weigh(student, live_server, "team (path over the rounds)", "/team/al-bo")
    score = drawn(student, "#team-path svg[id$='-score']")
    assert "round score and rank" in score["title"]
    drawn(student, "#team-path svg[id$='-parts']")
    assert "1 of" in student.inner_text("#path-data")
    save(student, "#team-path", "figure_team_path")


# --- between phases, then forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "name", "path", "status"), CLOSED, ids=[p[1] for p in CLOSED])
def test_page_between_phases_is_accessible(request, closed_competition, live_server, role, name, path, status):
    page = request.getfixturevalue(role.replace(" ", "_"))
    assert_accessible(page, live_server, role, name, path, status)


def refuse_login(page, base: str) -> str:
    page.goto(base + "/login")
    page.fill("#username", "alice")
    page.fill("#password", "not-her-password")
    page.click("input[type=submit]")
    return ".flash-error"


def register_with_errors(page, base: str) -> str:
    page.goto(base + "/register")
    for field, value in [("username", "yves"), ("email", "yves@example.org"), ("sciper", "654321")]:
        page.fill(f"#{field}", value)
    page.fill("#password", "yves-password")
    page.fill("#password2", "another-password")
    page.select_option("#team_select", "New team")
    page.fill("#new_team_name", "yves-team")
    page.click("input[type=submit]")
    return ".has-error .error"


def register_and_check_inbox(page, base: str) -> str:
    register_with_errors(page, base)
    page.fill("#password", "yves-password")
    page.fill("#password2", "yves-password")
    page.click("input[type=submit]")
    return "#register-sent"


def ask_reset_link(page, base: str) -> str:
    page.goto(base + "/forgot-password")
    page.fill("#email", "nobody@example.org")
    page.click("input[type=submit]")
    return ".flash-success"


@pytest.mark.parametrize(
    "send", [refuse_login, register_with_errors, register_and_check_inbox, ask_reset_link], ids=lambda f: f.__name__
)
def test_page_after_a_form_is_accessible(logged_out, live_server, send):
    """Flash messages and field errors, which only a sent form shows."""
    shown = send(logged_out, live_server)
    # The click returns once the answer starts loading: wait for what it shows (20 s at most), then for the whole page.
    logged_out.wait_for_selector(shown, state="attached")
    logged_out.wait_for_load_state("load")
    violations = AXE.run(logged_out, options=AXE_OPTIONS).response["violations"]
    assert not violations, f"after {send.__name__} ({logged_out.url}): {describe(violations)}"


def test_the_guard_sees_violations(logged_out):
    """A page with an unlabelled field, an image without text and faint text fails, each rule named."""
    logged_out.goto("about:blank")  # out of the site, whose Content-Security-Policy would block the inline style
    logged_out.set_content(
        '<!doctype html><html lang="en"><head><title>Bad</title></head><body><main>'
        '<input id="x"><img src="data:,"><p style="color:#ccc;background:#fff">faint</p></main></body></html>'
    )
    violations = AXE.run(logged_out, options=AXE_OPTIONS).response["violations"]
    report = describe(violations)
    for rule in ("label", "image-alt", "color-contrast"):
        assert f"- {rule} (" in report, report
    assert "at #x" in report and "first: Fix" in report, report


# --- last: the round closes ----------------------------------------------------------------------------------------


def test_after_the_round_the_defender_sees_the_real_attackers(browser, competition, live_server):
    competition["admin"].call("POST", "/rounds/1/close")
    page = new_page(browser)
    login(page, live_server, "charlie", "admin")
    submission = competition["defences"]["charlie"]
    assert_accessible(page, live_server, "a student", "defence after the round", f"/submissions/{submission}", 200)
    weigh(page, live_server, "defence after the round (two heat maps)", f"/submissions/{submission}")
    found = drawn(page, f"#leak-{submission}-r1")
    assert "real attackers" in found["title"]
    assert "pooled" in page.inner_text("#leakage [data-source=attackers]")
    save(page, "#leakage [data-source=attackers]", "figure_heatmap_attackers")
    # In a dark colour scheme the text of the pictures follows the page's ink and stays drawn.
    page.emulate_media(color_scheme="dark")
    page.reload()
    drawn(page, f"#leak-{submission}-r1")
    page.context.close()
