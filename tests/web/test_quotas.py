"""Upload quotas: per team, rolling 24 hours, failed uploads not counted, staff exempt; page message and API 429.

Every test runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL: the burst test checks each
database's locking.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import current_app
from werkzeug.serving import make_server

from app import clock
from app.extensions import db
from app.models import Phase, Submission, SubmissionKind, SubmissionStatus, Team
from app.services import competition, quotas
from tests.conftest import app_on
from tests.factories import api_token, make_round, make_submission, make_user


@pytest.fixture
def app(database_url, tmp_path):
    """The `app` fixture, on each database (see tests/conftest.py's database_url)."""
    with app_on(database_url, tmp_path) as app:
        yield app


def small_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("defence.csv", "cell_id,rep,direction_size,timestamp\n1,0,100,0.1\n")
    return buffer.getvalue()


def upload_page(client):
    return client.post("/defence/", data={"file": (io.BytesIO(small_zip()), "d.zip")})


def upload_api(client, headers):
    return client.post("/api/v1/defences", data={"file": (io.BytesIO(small_zip()), "d.zip")}, headers=headers)


def set_quota(app, name: str, value: int) -> None:
    """Set on the app under test and on the twin app whose context the test body runs in."""
    app.config[name] = value
    current_app.config[name] = value


@pytest.fixture
def defence_phase(app):
    competition.update_state(phase=Phase.DEFENCE)


def uploads(user, statuses, *, hours_ago: float = 1, kind=SubmissionKind.DEFENCE):
    """Rows of user's team created hours_ago, one per status."""
    team = db.session.get(Team, user.team_id)
    rows = []
    for status in statuses:
        row = make_submission(team, user, kind=kind, status=status)
        row.created_at = clock.now() - timedelta(hours=hours_ago)
        rows.append(row)
    db.session.commit()
    return rows


def test_queued_running_and_succeeded_uploads_count(app, alice):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 3)
    uploads(alice, [SubmissionStatus.QUEUED, SubmissionStatus.RUNNING])
    assert quotas.next_allowed(SubmissionKind.DEFENCE, alice.team_id) is None
    uploads(alice, [SubmissionStatus.SUCCEEDED])
    assert quotas.next_allowed(SubmissionKind.DEFENCE, alice.team_id) is not None


def test_failed_uploads_do_not_count(app, alice):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 2)
    uploads(alice, [SubmissionStatus.FAILED] * 5 + [SubmissionStatus.SUCCEEDED])
    assert quotas.next_allowed(SubmissionKind.DEFENCE, alice.team_id) is None
    quotas.check_quota(SubmissionKind.DEFENCE, alice)  # does not raise


def test_window_is_rolling_and_names_when_the_next_upload_is_allowed(app, alice):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 2)
    uploads(alice, [SubmissionStatus.SUCCEEDED], hours_ago=25)  # out of the window
    oldest = uploads(alice, [SubmissionStatus.SUCCEEDED], hours_ago=20)[0]
    uploads(alice, [SubmissionStatus.SUCCEEDED], hours_ago=2)
    with pytest.raises(Exception) as refused:
        quotas.check_quota(SubmissionKind.DEFENCE, alice)
    exc = refused.value
    assert (exc.status, exc.code) == (429, "quota")
    allowed_at = oldest.created_at + timedelta(hours=24)
    assert f"{allowed_at:%Y-%m-%d %H:%M} UTC" in exc.message
    assert abs(exc.retry_after - 4 * 3600) < 60
    # Once that upload is older than 24 h, a place is free again.
    oldest.created_at = clock.now() - timedelta(hours=24, minutes=1)
    db.session.commit()
    quotas.check_quota(SubmissionKind.DEFENCE, alice)


def test_quota_is_per_team_and_per_kind(app, alice):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 1)
    set_quota(app, "ATTACK_UPLOADS_PER_DAY", 1)
    uploads(alice, [SubmissionStatus.SUCCEEDED])
    bob = make_user("bob", team="al-bo")
    carol = make_user("carol", team="other")
    with pytest.raises(Exception, match="next one is allowed"):
        quotas.check_quota(SubmissionKind.DEFENCE, bob)  # same team
    quotas.check_quota(SubmissionKind.DEFENCE, carol)
    quotas.check_quota(SubmissionKind.ATTACK, alice)


def test_zero_means_unlimited(app, alice):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 0)
    uploads(alice, [SubmissionStatus.SUCCEEDED] * 30)
    quotas.check_quota(SubmissionKind.DEFENCE, alice)


def test_page_refuses_with_a_message_and_records_nothing(app, client, auth, alice, defence_phase):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 1)
    auth.login()
    first = upload_page(client)
    assert first.status_code == 302
    second = upload_page(client)
    assert second.status_code == 429
    body = second.get_data(as_text=True)
    assert "reached its quota of 1 defence upload in 24 hours" in body
    assert re.search(r"the next one is allowed at \d{4}-\d\d-\d\d \d\d:\d\d UTC", body)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Submission.id))) == 1


def test_api_answers_429_with_retry_after(app, client, alice, defence_phase):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 1)
    headers = api_token(alice)
    assert upload_api(client, headers).status_code == 202
    refused = upload_api(client, headers)
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "quota"
    assert "next one is allowed at" in refused.get_json()["message"]
    assert 24 * 3600 - 120 <= int(refused.headers["Retry-After"]) <= 24 * 3600


def test_a_failed_upload_gives_the_place_back(app, client, alice, defence_phase):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 1)
    headers = api_token(alice)
    first = upload_api(client, headers)
    assert upload_api(client, headers).status_code == 429
    row = db.session.get(Submission, first.get_json()["submission_id"])
    row.status = SubmissionStatus.FAILED
    db.session.commit()
    assert upload_api(client, headers).status_code == 202


def test_staff_are_exempt(app, client, defence_phase):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 1)
    staff = make_user("staff", admin=True)
    staff.team = Team(name="staff-team")
    db.session.commit()
    headers = api_token(staff)
    assert [upload_api(client, headers).status_code for _ in range(3)] == [202, 202, 202]


def test_defence_and_attack_pages_show_the_uploads_left(app, client, auth, alice):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 10)
    set_quota(app, "ATTACK_UPLOADS_PER_DAY", 10)
    competition.update_state(phase=Phase.BOTH)
    uploads(alice, [SubmissionStatus.SUCCEEDED, SubmissionStatus.QUEUED, SubmissionStatus.RUNNING])
    uploads(alice, [SubmissionStatus.FAILED])  # does not count
    uploads(alice, [SubmissionStatus.SUCCEEDED] * 2, kind=SubmissionKind.ATTACK)
    uploads(alice, [SubmissionStatus.SUCCEEDED], hours_ago=25)  # out of the window
    make_round(1, [(alice.team, make_user("dave", team="other").team)])
    auth.login()
    assert "Uploads left today: 7 of 10 (rolling 24 hours" in client.get("/defence/").get_data(as_text=True)
    assert "Uploads left today: 8 of 10 (rolling 24 hours" in client.get("/attack/").get_data(as_text=True)


def test_at_zero_left_the_page_says_when_the_next_upload_is_allowed(app, client, auth, alice, defence_phase):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 2)
    oldest = uploads(alice, [SubmissionStatus.SUCCEEDED], hours_ago=20)[0]
    uploads(alice, [SubmissionStatus.QUEUED])
    auth.login()
    allowed_at = oldest.created_at + timedelta(hours=24)
    expected = f"Uploads left today: 0 of 2: the next one is allowed at {allowed_at:%Y-%m-%d %H:%M} UTC"
    assert expected in client.get("/defence/").get_data(as_text=True)
    refused = upload_page(client)  # the refusal's page says it too
    assert refused.status_code == 429 and expected in refused.get_data(as_text=True)


def test_no_count_is_shown_without_a_quota_or_to_staff(app, client, auth, alice, defence_phase):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 0)
    auth.login()
    page = client.get("/defence/")
    assert page.status_code == 200 and "Uploads left" not in page.get_data(as_text=True)
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 5)
    assert "Uploads left today: 5 of 5" in client.get("/defence/").get_data(as_text=True)
    auth.logout()
    staff = make_user("staff", admin=True)
    staff.team = Team(name="staff-team")
    db.session.commit()
    auth.login("staff")
    page = client.get("/defence/")
    assert page.status_code == 200 and "Uploads left" not in page.get_data(as_text=True)


def test_me_gives_the_uploads_left_null_when_unlimited(app, client, alice):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 10)
    set_quota(app, "ATTACK_UPLOADS_PER_DAY", 0)
    uploads(alice, [SubmissionStatus.SUCCEEDED] * 3 + [SubmissionStatus.FAILED])

    def left(user):
        response = client.get("/api/v1/me", headers=api_token(user))
        assert response.status_code == 200
        return response.get_json()["uploads_left"]

    assert left(alice) == {"defence": 7, "attack": None}
    assert left(make_user("bob", team="al-bo")) == {"defence": 7, "attack": None}  # per team
    assert left(make_user("nomad")) == {"defence": 10, "attack": None}  # no team yet: nothing counted
    assert left(make_user("staff", admin=True)) == {"defence": None, "attack": None}


@contextmanager
def served(app) -> Iterator[str]:
    """The app's URL while a threaded werkzeug server answers on it (each request in a thread of its own)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def counted_uploads(team_id: int) -> int:
    """The team's defence uploads that count against the quota now (not failed, in the last 24 hours)."""
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count(Submission.id)).where(
            Submission.team_id == team_id,
            Submission.kind == SubmissionKind.DEFENCE,
            Submission.status != SubmissionStatus.FAILED,
            Submission.created_at > clock.now() - quotas.WINDOW,
        )
    )


def test_a_burst_from_both_members_gets_exactly_the_places_left(app, defence_phase):
    set_quota(app, "DEFENCE_UPLOADS_PER_DAY", 10)
    alice, bob = make_user("alice", team="al-bo"), make_user("bob", team="al-bo")
    uploads(alice, [SubmissionStatus.SUCCEEDED, SubmissionStatus.QUEUED, SubmissionStatus.SUCCEEDED])
    uploads(bob, [SubmissionStatus.FAILED] * 2)  # failed: they do not count
    team_id, before = alice.team_id, {s.id for s in db.session.scalars(sa.select(Submission))}
    tokens = {user.username: api_token(user) for user in (alice, bob)}
    body = small_zip()
    with served(app) as url:
        cookies = {}
        for name in tokens:
            login = requests.post(
                f"{url}/login", data={"username": name, "password": "secret-pw"}, allow_redirects=False
            )
            assert login.status_code == 302, name
            cookies[name] = login.cookies
        # 14 uploads at once: 7 through the API, 7 through the form, each way from both members.
        sends = [("api" if i < 7 else "form", ("alice", "bob")[i % 2]) for i in range(14)]
        start = threading.Barrier(len(sends))

        def send(way: str, name: str) -> requests.Response:
            files = {"file": ("d.zip", body, "application/zip")}
            start.wait(timeout=30)
            if way == "api":
                return requests.post(f"{url}/api/v1/defences", files=files, headers=tokens[name], timeout=60)
            return requests.post(
                f"{url}/defence/", files=files, cookies=cookies[name], allow_redirects=False, timeout=60
            )

        with ThreadPoolExecutor(len(sends)) as pool:
            answers = list(pool.map(lambda s: send(*s), sends))
        left = requests.get(f"{url}/api/v1/me", headers=tokens["bob"], timeout=30).json()["uploads_left"]

    accepted = [a for a in answers if a.status_code in (202, 302)]
    refused = [a for a in answers if a.status_code == 429]
    assert (len(accepted), len(refused)) == (7, 7), [a.status_code for a in answers]
    for answer, (way, _) in zip(answers, sends, strict=True):
        if answer.status_code == 302:
            assert way == "form" and "/submissions/" in answer.headers["Location"]
        elif answer.status_code == 202:
            assert way == "api"
        else:
            assert 0 < int(answer.headers["Retry-After"]) <= 24 * 3600
            message = answer.json()["message"] if way == "api" else answer.text
            assert "reached its quota of 10 defence uploads in 24 hours" in message
            assert re.search(r"the next one is allowed at \d{4}-\d\d-\d\d \d\d:\d\d UTC", message)
    assert counted_uploads(team_id) == 10
    assert left["defence"] == 0
    # No half-written refusal: the new rows are the accepted ones, each with its stored file, and no other file.
    new = {s.id for s in db.session.scalars(sa.select(Submission))} - before
    assert len(new) == 7
    stored = {int(p.name) for p in (Path(app.config["UPLOAD_FOLDER"]) / "submissions").iterdir()}
    assert stored == new
