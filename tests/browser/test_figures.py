"""The figures in Chromium: a student's defence page draws where it leaks (the baseline attack's heat map), the
attack page its ROC curve and top-k accuracy, the team page its path over the rounds, and, once the round closed,
the defender's page the real attackers' heat map; each SVG is drawn at a real size with its title, its table is
beside it, and axe finds no WCAG 2.1 A/AA violation. SRS_SCREENSHOTS=docs/screenshots refreshes the docs' pictures.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import ExtraTreesClassifier

from app.evaluation.baseline import load_test, load_train
from app.evaluation.features import extract_features
from tests.browser import test_accessibility as accessibility
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_accessibility import Api, assert_accessible, new_page
from tests.browser.test_smoke import login
from tests.conftest import SAMPLE_DEFENCE

pytestmark = pytest.mark.browser
student = accessibility.student  # alice's page, logged in once for the module


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


@pytest.fixture(scope="module")
def stage(live_server) -> dict:
    """alice and charlie defended (their baseline estimates in), round 1: alice attacked with a trained model."""
    admin, alice, charlie = Api(live_server, "admin"), Api(live_server, "alice"), Api(live_server, "charlie")
    admin.call("PUT", "/competition", json={"phase": "Both"})
    sample = SAMPLE_DEFENCE.read_bytes()
    defences = {
        name: api.upload("defences", SAMPLE_DEFENCE.name, sample)
        for name, api in (("alice", alice), ("charlie", charlie))
    }
    for name, api in (("alice", alice), ("charlie", charlie)):
        api.wait_succeeded(defences[name])
        api.wait_baseline(defences[name])
    admin.call("POST", "/rounds", 201, json={"round": 1})
    nb_classes = alice.call("GET", "/competition").json()["nb_classes"]
    attack = alice.upload("attacks", "classification.csv.zip", trained_attack(alice, nb_classes))
    alice.wait_succeeded(attack)
    return {"admin": admin, "defences": defences, "attack": attack}


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


def test_the_defence_page_shows_where_the_baseline_attack_recognises_the_cells(student, stage, live_server):
    submission = stage["defences"]["alice"]
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


def test_the_attack_page_shows_the_roc_curve_and_top_k(student, stage, live_server):
    submission = stage["attack"]
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


def test_the_team_page_shows_the_path_over_the_rounds(student, stage, live_server):
    assert_accessible(student, live_server, "a student", "team with its path", "/team/al-bo", 200)
    weigh(student, live_server, "team (path over the rounds)", "/team/al-bo")
    score = drawn(student, "#team-path svg[id$='-score']")
    assert "round score and rank" in score["title"]
    drawn(student, "#team-path svg[id$='-parts']")
    assert "1 of" in student.inner_text("#path-data")
    save(student, "#team-path", "figure_team_path")


def test_after_the_round_the_defender_sees_the_real_attackers(browser, stage, live_server):
    stage["admin"].call("POST", "/rounds/1/close")
    page = new_page(browser)
    login(page, live_server, "charlie", "admin")
    submission = stage["defences"]["charlie"]
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
