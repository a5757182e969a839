"""Staff dashboard under /admin/: access, teams with search, submissions with filters, stored files, resets."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.engine import Engine
from werkzeug.security import check_password_hash

from app import clock
from app.extensions import db
from app.models import SubmissionKind, SubmissionStatus, Team
from app.services import audit, dashboard, password_reset
from tests.factories import make_attack, make_defence, make_round, make_submission, make_team, make_user

PAGES = ["/admin/", "/admin/submissions/", "/admin/submissions/1", "/admin/submissions/1/files/upload"]
PAGES += ["/admin/exports/", "/admin/exports/leaderboard.csv", "/admin/exports/submissions.csv"]


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


@pytest.fixture
def sent(monkeypatch):
    """Mails queued by the password-reset service: (subject, recipients, text)."""
    outbox = []
    monkeypatch.setattr(password_reset.mail, "queue_mail", lambda s, r, t, h=None: outbox.append((s, r, t)))
    return outbox


@pytest.fixture
def one_submission(alice):
    return make_submission(alice.team, alice)


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_users_are_sent_to_login(client, one_submission, path):
    response = client.get(path)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


@pytest.mark.parametrize("path", PAGES)
def test_students_are_forbidden_everywhere(client, auth, one_submission, path):
    auth.login()
    response = client.get(path)
    assert response.status_code == 403
    assert "for the course staff" in text(response)


def test_students_cannot_send_reset_links(client, auth, alice, sent):
    auth.login()
    assert client.post(f"/admin/users/{alice.id}/reset-password").status_code == 403
    assert sent == []


def test_admins_see_the_dashboard_link(client, auth, admin):
    auth.login("admin")
    assert 'href="/admin/"' in client.get("/").get_data(as_text=True)


def test_teams_with_members_latest_defence_and_round_scores(client, auth, admin, alice):
    bob = make_user("bob", team="al-bo")
    other = make_team("cha-di")
    make_user("charlie", team="cha-di")
    make_defence(alice.team, utility_score=4.5)
    make_defence(other, utility_score=6.0)
    failed = make_submission(alice.team, bob, status=SubmissionStatus.FAILED)
    matches = make_round(1, [(alice.team, other), (other, alice.team)])
    make_attack(matches[0], 0.75)
    auth.login("admin")
    page = client.get("/admin/")
    assert page.status_code == 200
    row = re.search(r'<tr data-team="al-bo">(.*?)</tr>', page.get_data(as_text=True), re.S).group(1)
    row_text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
    assert "alice" in row_text and "bob@example.org" in row_text and alice.sciper in row_text
    assert f"#{failed.id} failed" in row_text  # the latest defence upload and its status
    assert "utility 4.500" in row_text  # the defence in use
    assert "Round 1: rank" in row_text
    assert "attacks cha-di: ROC-AUC 0.750" in row_text
    assert "attacked by cha-di: ROC-AUC -" in row_text


@pytest.mark.parametrize("term", ["cha", "CHARLIE", "charlie@example", "cha-di"])
def test_search_finds_teams_by_name_member_or_email(client, auth, admin, alice, term):
    make_user("charlie", team="cha-di")
    auth.login("admin")
    body = client.get("/admin/", query_string={"q": term}).get_data(as_text=True)
    assert 'data-team="cha-di"' in body
    assert 'data-team="al-bo"' not in body


def test_search_treats_wildcards_literally(client, auth, admin, alice):
    auth.login("admin")
    assert 'data-team="al-bo"' not in client.get("/admin/", query_string={"q": "%"}).get_data(as_text=True)


def count_queries(action) -> int:
    """Statements run by action on any engine (the app under test has its own engine)."""
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(Engine, "before_cursor_execute", record)
    try:
        assert action().status_code == 200
    finally:
        sa.event.remove(Engine, "before_cursor_execute", record)
    return len(statements)


def test_teams_page_queries_do_not_grow_with_teams(client, auth, admin):
    def add_teams(start: int, count: int):
        for i in range(start, start + count):
            team = make_team(f"team-{i:02d}")
            make_user(f"user-{i:02d}", team=team.name)
            make_defence(team)

    add_teams(0, 2)
    make_round(
        1,
        [
            (
                db.session.scalar(sa.select(Team).where(Team.name == "team-00")),
                db.session.scalar(sa.select(Team).where(Team.name == "team-01")),
            )
        ],
    )
    auth.login("admin")
    small = count_queries(lambda: client.get("/admin/"))
    add_teams(2, 8)
    large = count_queries(lambda: client.get("/admin/"))
    assert 0 < large == small


def test_submissions_newest_first_with_timings_attempts_and_error(client, auth, admin, alice):
    old = make_submission(alice.team, alice)
    new = make_submission(alice.team, alice, status=SubmissionStatus.FAILED)
    new.started_at = clock.now()
    new.finished_at = clock.now() + timedelta(seconds=3)
    new.attempts = 2
    new.error = "The CSV lacks the column timestamp."
    db.session.commit()
    auth.login("admin")
    body = client.get("/admin/submissions/").get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'class="submission-row" data-id="(\d+)"', body)]
    assert ids == [new.id, old.id]
    assert "The CSV lacks the column timestamp." in body
    assert new.finished_at.strftime("%H:%M:%S") in body


def make_mix(alice):
    bob_team = make_team("other")
    bob = make_user("bob", team="other")
    rows = {
        "alice-defence-failed": make_submission(alice.team, alice, status=SubmissionStatus.FAILED),
        "alice-attack-r1": make_submission(alice.team, alice, kind=SubmissionKind.ATTACK, round=1),
        "bob-defence-ok": make_submission(bob_team, bob, status=SubmissionStatus.SUCCEEDED),
    }
    return rows


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "attack"}, {"alice-attack-r1"}),
        ({"status": "failed"}, {"alice-defence-failed"}),
        ({"team": "other"}, {"bob-defence-ok"}),
        ({"round": 1}, {"alice-attack-r1"}),
        ({"kind": "defence", "team": "al-bo"}, {"alice-defence-failed"}),
        ({"kind": "nonsense"}, {"alice-defence-failed", "alice-attack-r1", "bob-defence-ok"}),
    ],
)
def test_submission_filters(client, auth, admin, alice, query, expected):
    rows = make_mix(alice)
    auth.login("admin")
    body = client.get("/admin/submissions/", query_string=query).get_data(as_text=True)
    shown = {int(i) for i in re.findall(r'class="submission-row" data-id="(\d+)"', body)}
    assert shown == {rows[name].id for name in expected}


def test_submissions_are_paginated_and_filters_survive_paging(client, auth, admin, alice):
    for _ in range(dashboard.PER_PAGE + 1):
        make_submission(alice.team, alice, status=SubmissionStatus.FAILED)
    make_submission(alice.team, alice)
    auth.login("admin")
    first = client.get("/admin/submissions/", query_string={"status": "failed"}).get_data(as_text=True)
    assert len(re.findall(r'class="submission-row"', first)) == dashboard.PER_PAGE
    assert "Page 1 of 2" in first
    next_link = html.unescape(re.search(r'href="([^"]+)">Next', first).group(1))
    assert "status=failed" in next_link
    second = client.get(next_link).get_data(as_text=True)
    assert len(re.findall(r'class="submission-row"', second)) == 1


def test_submission_detail_shows_checks_timings_and_files(client, auth, admin, alice):
    submission = make_submission(alice.team, alice, status=SubmissionStatus.FAILED)
    submission.results = {"checks": [{"name": "columns", "passed": False, "message": "timestamp is missing"}]}
    submission.error = "The file failed its checks."
    submission.attempts = 1
    submission.started_at = clock.now()
    submission.file_key = f"submissions/{submission.id}/upload.zip"
    db.session.commit()
    auth.login("admin")
    page = text(client.get(f"/admin/submissions/{submission.id}"))
    assert "timestamp is missing" in page and "FAILED" in page
    assert "The file failed its checks." in page
    assert submission.started_at.strftime("%Y-%m-%d %H:%M:%S") in page
    assert "Attempts 1" in page
    assert "upload" in page


def test_unknown_submission_is_404(client, auth, admin):
    auth.login("admin")
    assert client.get("/admin/submissions/999").status_code == 404


def store(key: str, content: bytes, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(content)
    current_app.extensions["storage"].save(key, source)


def test_staff_download_uploads_and_every_generated_set(client, auth, admin, alice, tmp_path):
    defence = make_defence(alice.team)
    submission = defence.submission
    submission.file_key = f"submissions/{submission.id}/upload.zip"
    defence.train_key = f"defences/{submission.id}/train.csv.zip"
    defence.test_key = f"defences/{submission.id}/test.csv.zip"
    defence.verification_key = f"defences/{submission.id}/verification.csv.zip"
    db.session.commit()
    files = {
        "upload": (submission.file_key, b"the upload"),
        "train": (defence.train_key, b"train set"),
        "test": (defence.test_key, b"test set"),
        "verification": (defence.verification_key, b"hidden labels"),
    }
    for key, content in files.values():
        store(key, content, tmp_path)
    auth.login("admin")
    page = client.get(f"/admin/submissions/{submission.id}").get_data(as_text=True)
    for which, (_key, content) in files.items():
        url = f"/admin/submissions/{submission.id}/files/{which}"
        assert f'href="{url}"' in page
        response = client.get(url)
        assert response.status_code == 200
        assert response.data == content
        assert "attachment" in response.headers["Content-Disposition"]
    downloads = audit.last_entries("download-file")  # staff downloads (hidden labels included) leave a trace
    assert {e.after["file"] for e in downloads} == set(files) and {e.actor_name for e in downloads} == {"admin"}


def test_students_cannot_download_even_their_own_through_the_dashboard(client, auth, alice, tmp_path):
    submission = make_submission(alice.team, alice)
    submission.file_key = f"submissions/{submission.id}/upload.zip"
    db.session.commit()
    store(submission.file_key, b"zip", tmp_path)
    auth.login()
    assert client.get(f"/admin/submissions/{submission.id}/files/upload").status_code == 403


@pytest.mark.parametrize("which", ["verification", "nothing", "..%2Fetc"])
def test_missing_files_are_404(client, auth, admin, alice, which):
    submission = make_submission(alice.team, alice)  # no defence, no stored file
    auth.login("admin")
    assert client.get(f"/admin/submissions/{submission.id}/files/{which}").status_code == 404


def test_staff_send_a_reset_link_without_seeing_a_password(client, auth, admin, alice, sent):
    auth.login("admin")
    response = client.post(f"/admin/users/{alice.id}/reset-password", follow_redirects=True)
    assert response.status_code == 200
    assert "A password-reset link was sent to alice" in text(response)
    assert len(sent) == 1
    subject, recipients, body = sent[0]
    assert recipients == ["alice@example.org"]
    assert "/reset-password/" in body and "course staff" in body
    assert check_password_hash(
        db.session.get(type(alice), alice.id).password_hash, "secret-pw"
    )  # unchanged until alice acts


def test_reset_link_button_needs_csrf(make_app, sent):
    app = make_app(WTF_CSRF_ENABLED=True)
    from tests.factories import make_user as mk

    admin = mk("admin", admin=True)
    student = mk("alice", team="al-bo")
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    client.post("/login", data={"username": "admin", "password": "secret-pw", "csrf_token": token})
    assert client.get("/admin/").status_code == 200
    assert client.post(f"/admin/users/{student.id}/reset-password").status_code == 400
    assert sent == []
    page = client.get("/admin/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post(f"/admin/users/{student.id}/reset-password", data={"csrf_token": token}).status_code == 302
    assert len(sent) == 1
    assert admin.is_admin


def test_reset_link_for_unknown_user_is_404(client, auth, admin, sent):
    auth.login("admin")
    assert client.post("/admin/users/999/reset-password").status_code == 404
    assert sent == []
