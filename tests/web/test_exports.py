"""Exports: CSV downloads, `flask export`, JSON for staff tokens; formula cells neutralised."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from app.csv_safe import neutralise, to_csv
from app.extensions import db
from app.models import Submission, SubmissionStatus
from app.services import competition
from tests.factories import api_token, make_attack, make_defence, make_round, make_submission, make_team, make_user


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("al-bo", "al-bo"),
        ("", ""),
        (-0.5, -0.5),
        (None, None),
    ],
)
def test_neutralise(cell, expected):
    assert neutralise(cell) == expected


def test_to_csv_neutralises_header_and_cells():
    assert rows_of(to_csv(["=a"], [["=1+1"], [None]])) == [{"'=a": "'=1+1"}, {"'=a": ""}]


@pytest.fixture
def competition_with_a_round(app):
    """Two teams (one named like a formula) with defences, round 1 played both ways, one attack scored."""
    evil = make_team("=cmd|' /C calc'!A0")
    alice = make_user("alice", team="al-bo")
    make_user("bob", team="al-bo")
    make_user("mallory", team=evil.name)
    make_defence(alice.team, utility_score=4.0)
    make_defence(evil, utility_score=5.0)
    matches = make_round(1, [(alice.team, evil), (evil, alice.team)])
    make_attack(matches[0], 0.8)
    make_submission(alice.team, alice, status=SubmissionStatus.FAILED).error = "=bad"
    db.session.commit()
    return {"alice": alice, "evil": evil, "matches": matches}


def test_round_leaderboard_csv_is_the_grading_sheet(client, auth, admin, competition_with_a_round):
    auth.login("admin")
    response = client.get("/admin/exports/leaderboard.csv?round=1")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="srs-leaderboard-round-1.csv"' in response.headers["Content-Disposition"]
    rows = {r["team_name"]: r for r in rows_of(response.get_data(as_text=True))}
    alice = competition_with_a_round["alice"]
    al_bo = rows["al-bo"]
    assert al_bo["members"] == "alice;bob"
    assert al_bo["emails"] == "alice@example.org;bob@example.org"
    assert al_bo["scipers"].split(";")[0] == alice.sciper
    assert float(al_bo["utility_score"]) == 4.0
    assert float(al_bo["attack_performance"]) == pytest.approx(8.0)
    assert al_bo["rank"] in {"1", "2"} and al_bo["score"]
    assert "'=cmd|' /C calc'!A0" in rows  # the formula-like team name is neutralised


def test_overall_leaderboard_has_each_rounds_score_and_rank(client, auth, admin, competition_with_a_round):
    auth.login("admin")
    text = client.get("/admin/exports/leaderboard.csv").get_data(as_text=True)
    rows = rows_of(text)
    assert {"rank", "team_name", "scipers", "emails", "score", "round_1_score", "round_1_rank"} <= set(rows[0])
    assert {r["team_name"] for r in rows} == {"al-bo", "'=cmd|' /C calc'!A0"}


def test_submissions_csv_has_every_submission_with_results(client, auth, admin, competition_with_a_round):
    auth.login("admin")
    rows = rows_of(client.get("/admin/exports/submissions.csv").get_data(as_text=True))
    assert len(rows) == 4  # two defences, one attack, one failed upload
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed[0]["error"] == "'=bad"
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)


def test_submissions_csv_names_the_worker_of_each_run(client, auth, admin, competition_with_a_round):
    ran = db.session.scalars(sa.select(Submission).order_by(Submission.id)).first()
    ran.worker = "celery@eval-host-2"
    db.session.commit()
    auth.login("admin")
    rows = rows_of(client.get("/admin/exports/submissions.csv").get_data(as_text=True))
    assert {r["id"]: r["worker"] for r in rows}[str(ran.id)] == "celery@eval-host-2"
    assert {r["worker"] for r in rows if r["id"] != str(ran.id)} == {""}  # never claimed by a worker here


def test_matches_csv_has_scores(client, auth, admin, competition_with_a_round):
    auth.login("admin")
    rows = rows_of(client.get("/admin/exports/matches.csv?round=1").get_data(as_text=True))
    assert len(rows) == 2
    scored = [r for r in rows if r["roc_auc"]]
    assert len(scored) == 1
    assert scored[0]["attacker_team"] == "al-bo"
    assert float(scored[0]["roc_auc"]) == pytest.approx(0.8)
    assert scored[0]["defender_team"] == "'=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("path", "status"), [("/admin/exports/grades.csv", 404), ("/admin/exports/matches.csv?round=7", 404)]
)
def test_bad_export_requests_are_404_with_a_reason(client, auth, admin, path, status):
    auth.login("admin")
    response = client.get(path)
    assert response.status_code == status
    assert "leaderboard, submissions, matches" in response.get_data(as_text=True) or "no round 7" in response.get_data(
        as_text=True
    )


def test_exports_page_lists_each_round(client, auth, admin, competition_with_a_round):
    auth.login("admin")
    body = client.get("/admin/exports/").get_data(as_text=True)
    assert "/admin/exports/leaderboard.csv?round=1" in body
    assert "/admin/exports/submissions.csv" in body


def test_api_export_for_admin_tokens(client, admin, competition_with_a_round):
    response = client.get("/api/v1/admin/exports/matches", headers=api_token(admin))
    assert response.status_code == 200
    data = response.get_json()
    assert data["name"] == "matches"
    assert len(data["rows"]) == 2
    assert {"attacker_team", "roc_auc"} <= set(data["rows"][0])


def test_api_export_leaderboard_of_a_round(client, admin, competition_with_a_round):
    data = client.get("/api/v1/admin/exports/leaderboard?round=1", headers=api_token(admin)).get_json()
    # JSON is data, not a spreadsheet: names come back as they are.
    assert {r["team_name"] for r in data["rows"]} == {"al-bo", "=cmd|' /C calc'!A0"}


def test_api_export_refuses_students_sessions_and_no_token(client, auth, admin, competition_with_a_round):
    student = competition_with_a_round["alice"]
    assert client.get("/api/v1/admin/exports/matches", headers=api_token(student)).status_code == 403
    assert client.get("/api/v1/admin/exports/matches").status_code == 401
    auth.login("admin")
    assert client.get("/api/v1/admin/exports/matches").status_code == 401  # a session is not a token


def test_api_export_unknown_name_is_json_404(client, admin):
    response = client.get("/api/v1/admin/exports/grades", headers=api_token(admin))
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_cli_export_to_stdout_and_file(runner, competition_with_a_round, tmp_path):
    result = runner.invoke(args=["export", "matches", "--round", "1"])
    assert result.exit_code == 0, result.output
    assert len(rows_of(result.output)) == 2
    out = tmp_path / "grades.csv"
    result = runner.invoke(args=["export", "leaderboard", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert {r["team_name"] for r in rows_of(out.read_text())} == {"al-bo", "'=cmd|' /C calc'!A0"}


def test_cli_export_refuses_a_round_not_generated(runner, app):
    competition.get_state()
    result = runner.invoke(args=["export", "submissions", "--round", "3"])
    assert result.exit_code != 0
    assert "There is no round 3" in result.output


def test_a_spreadsheet_splitting_on_semicolons_sees_no_formula(client, auth, admin):
    """A team named `x;=cmd|' /C calc'!A0`: a European-locale spreadsheet splits on `;`, and would see a cell
    starting with `=`. The formula start after the separator is neutralised."""
    make_defence(make_team("x;=cmd|' /C calc'!A0"), utility_score=5.0)
    db.session.commit()
    auth.login("admin")
    raw = client.get("/admin/exports/leaderboard.csv?round=0").get_data(as_text=True)
    lines = raw.strip().split("\r\n")
    pieces = [piece.strip('"') for line in lines for sep in (";", ",", "\t") for piece in line.split(sep)]
    assert not any(piece.startswith(("=", "+", "-", "@")) for piece in pieces)
    assert "x;'=cmd|' /C calc'!A0" in {r["team_name"] for r in rows_of(raw)}  # the name still reads back
