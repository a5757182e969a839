"""Timeline, audit log and announcements: staff pages, the API, the beat's exactly-once application."""

from __future__ import annotations

import csv
import io
import re
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app import clock
from app.extensions import db
from app.models import AuditEntry, Phase, ScheduledAction
from app.services import announcements, audit, competition, schedule
from tests.factories import api_token, make_user

T0 = datetime(2026, 3, 1, 12, 0, 0)

STAFF_PAGES = [
    ("GET", "/admin/schedule"),
    ("POST", "/admin/schedule"),
    ("GET", "/admin/schedule/1/edit"),
    ("POST", "/admin/schedule/1/delete"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/audit.csv"),
    ("GET", "/admin/announcements"),
    ("POST", "/admin/announcements"),
    ("POST", "/admin/announcements/1/expire"),
]


@pytest.fixture
def frozen():
    clock.freeze(T0)
    yield
    clock.freeze(None)


def state():
    db.session.expire_all()
    return competition.get_state()


def plan(action="phase", value="Attack", due=T0):
    return schedule.add(action, value, due, actor="tester")


@pytest.mark.parametrize(("method", "path"), STAFF_PAGES)
def test_students_get_403_on_every_staff_page(client, auth, alice, method, path):
    plan()
    auth.login()
    response = client.open(path, method=method, data={"action": "phase", "phase": "None", "due_at": "2026-01-01T00:00"})
    assert response.status_code == 403
    assert state().phase is Phase.NONE
    assert len(schedule.pending()) == 1


def test_anonymous_users_are_sent_to_login(client):
    response = client.get("/admin/schedule")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/schedule"), ("POST", "/api/v1/schedule"), ("DELETE", "/api/v1/schedule/1")]
)
def test_students_get_403_on_the_schedule_api(client, alice, method, path):
    plan()
    response = client.open(
        path,
        method=method,
        headers=api_token(alice),
        json={"action": "phase", "value": "None", "due_at": "2026-01-01T00:00:00Z"},
    )
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert len(schedule.pending()) == 1


def test_admin_plans_edits_and_deletes_an_action_on_the_page(client, auth, admin, frozen):
    auth.login("admin")
    response = client.post("/admin/schedule", data={"action": "phase", "phase": "Attack", "due_at": "2026-03-02T09:30"})
    assert response.status_code == 302
    [row] = schedule.pending()
    assert (row.action, row.value, row.due_at) == ("phase", "Attack", datetime(2026, 3, 2, 9, 30))
    page = client.get("/admin/schedule").get_data(as_text=True)
    assert "Phase → Attack" in page and "2026-03-02 09:30:00" in page

    response = client.post(
        f"/admin/schedule/{row.id}/edit",
        data={"action": "registration", "registration": "closed", "due_at": "2026-03-03T08:00"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    [row] = schedule.pending()
    assert (row.action, row.value, row.due_at) == ("registration", "closed", datetime(2026, 3, 3, 8, 0))

    assert client.post(f"/admin/schedule/{row.id}/delete").status_code == 302
    assert schedule.pending() == []
    actions = [e.action for e in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["schedule-add", "schedule-edit", "schedule-delete"]


def test_a_missing_time_is_refused_with_a_message(client, auth, admin):
    auth.login("admin")
    response = client.post("/admin/schedule", data={"action": "phase", "phase": "Attack", "due_at": ""})
    assert response.status_code == 400
    assert "Give a date and time in UTC." in response.get_data(as_text=True)
    assert schedule.pending() == []


def test_api_lists_adds_and_deletes(client, admin):
    headers = api_token(admin)
    response = client.post(
        "/api/v1/schedule",
        headers=headers,
        json={"action": "phase", "value": "both", "due_at": "2026-03-01T13:00:00+01:00"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["value"] == "Both" and body["due_at"] == "2026-03-01T12:00:00Z"  # converted to UTC
    listing = client.get("/api/v1/schedule", headers=headers).get_json()
    assert [a["id"] for a in listing["pending"]] == [body["id"]]
    assert client.delete(f"/api/v1/schedule/{body['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/schedule", headers=headers).get_json()["pending"] == []
    assert client.delete(f"/api/v1/schedule/{body['id']}", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"action": "phase", "value": "Lunch", "due_at": "2026-03-01T12:00:00Z"}, "Unknown phase"),
        ({"action": "nap", "due_at": "2026-03-01T12:00:00Z"}, "Unknown action"),
        ({"action": "phase", "value": "Attack", "due_at": "tomorrow"}, "ISO 8601"),
        ({"action": "registration", "value": "maybe", "due_at": "2026-03-01T12:00:00Z"}, "'open' or 'closed'"),
    ],
)
def test_api_refuses_bad_actions_with_a_message(client, admin, payload, fragment):
    response = client.post("/api/v1/schedule", headers=api_token(admin), json=payload)
    assert response.status_code == 400
    assert fragment in response.get_json()["message"]
    assert schedule.pending() == []


def test_due_actions_are_applied_once_in_time_order(app, admin, frozen):
    plan("phase", "Defence", T0 - timedelta(seconds=20))
    plan("registration", "closed", T0 - timedelta(seconds=10))
    later = plan("phase", "Attack", T0 + timedelta(minutes=5))
    assert len(schedule.apply_due()) == 2
    assert state().phase is Phase.DEFENCE and not state().registration_open
    assert schedule.apply_due() == []  # nothing applied twice
    assert [r.id for r in schedule.pending()] == [later.id]
    entries = audit.last_entries("phase")
    assert entries[0].actor_name == "scheduler" and entries[0].after == {"phase": "Defence"}
    assert "applied late" not in (entries[0].note or "")


def test_an_action_missed_during_downtime_is_applied_late_with_a_note(app, admin, frozen):
    row = plan("phase", "Attack", T0 - timedelta(hours=3))
    schedule.apply_due()
    assert state().phase is Phase.ATTACK
    [entry] = audit.last_entries("phase")
    assert entry.note.startswith("applied late")
    db.session.expire_all()
    assert db.session.get(ScheduledAction, row.id).outcome == "applied late"


def test_a_claim_succeeds_only_once(app, admin, frozen):
    row = plan()
    assert schedule.claim(row.id, T0) is True
    db.session.commit()
    assert schedule.claim(row.id, T0) is False
    db.session.rollback()


def test_two_beats_racing_apply_an_action_exactly_once(app, admin, frozen):
    for i in range(6):
        plan("phase", ["Defence", "Attack"][i % 2], T0 - timedelta(seconds=60 - i))
    results: list[list[int]] = []

    def beat():
        with app.app_context():
            results.append(schedule.apply_due())
            db.session.remove()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    applied = sorted(results[0] + results[1])
    assert applied == sorted(set(applied)) and len(applied) == 6
    assert len(audit.last_entries("phase")) == 6


def test_a_failing_round_generation_is_recorded_not_retried(app, admin, frozen):
    plan("round", None, T0 - timedelta(seconds=1))
    schedule.apply_due()
    [row] = schedule.history()
    assert row.outcome.startswith("failed: Round 1 needs at least two teams")
    assert schedule.apply_due() == []
    assert audit.last_entries("round-failed")


def test_every_page_shows_the_next_change_in_utc(client, alice, frozen):
    plan("phase", "Attack", datetime(2026, 3, 4, 18, 0))
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'<time id="next-change-time" datetime="([^"]+)">([^<]+)</time>', page)
    assert found and found.groups() == ("2026-03-04T18:00:00Z", "2026-03-04 18:00:00 UTC")
    assert "Phase → Attack" in page
    assert "js/countdown.js" in page and "<script>" not in page


def test_audit_log_records_manual_phase_change_with_the_admin(client, auth, admin):
    auth.login("admin")
    client.post("/set_phase/", data={"phase": "Attack"})
    client.post("/set_registration/", data={"registration_open": "0"})
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "admin" in page and '{"phase": "Attack"}' in page.replace("&#34;", '"')
    filtered = client.get("/admin/audit?action=registration").get_data(as_text=True)
    assert '{"open": false}' in filtered.replace("&#34;", '"') and "Attack" not in filtered.split("<table")[-1]


def test_audit_csv_neutralises_formulas(client, auth, admin):
    audit.record_now("=HYPERLINK(evil)", "phase", {"phase": "None"}, {"phase": "Attack"}, target="+cmd")
    auth.login("admin")
    response = client.get("/admin/audit.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0]["actor"] == "'=HYPERLINK(evil)" and rows[0]["target"] == "'+cmd"


def test_cli_commands_log_as_cli(app, runner):
    result = runner.invoke(args=["flush-matches", "--yes"])
    assert result.exit_code == 0
    [entry] = audit.last_entries("flush-matches")
    assert entry.actor_name == "cli"


def test_upload_after_close_says_when_it_closed(client, alice, frozen):
    competition.update_state(phase=Phase.DEFENCE, actor="tester")
    clock.freeze(T0 + timedelta(hours=1))
    competition.update_state(phase=Phase.ATTACK, actor="scheduler")
    response = client.post("/api/v1/defences", headers=api_token(alice), data={"file": (io.BytesIO(b"PK"), "d.zip")})
    assert response.status_code == 409
    assert "closed since 2026-03-01 13:00:00 UTC" in response.get_json()["message"]


def test_announcement_banner_until_it_expires(client, auth, admin, alice, frozen):
    auth.login("admin")
    response = client.post(
        "/admin/announcements",
        data={"title": "Deadline moved", "body": "Attack phase ends Friday.", "expires_at": "2026-03-02T12:00"},
    )
    assert response.status_code == 302
    client.post("/logout")
    auth.login()
    assert "Deadline moved" in client.get("/").get_data(as_text=True)
    clock.freeze(T0 + timedelta(days=2))
    assert "Deadline moved" not in client.get("/").get_data(as_text=True)


def test_announcement_in_the_past_is_refused(client, auth, admin, frozen):
    auth.login("admin")
    response = client.post("/admin/announcements", data={"title": "Old", "body": "x", "expires_at": "2026-02-01T12:00"})
    assert response.status_code == 400
    assert "The expiry is in the past" in response.get_data(as_text=True)


def test_a_defence_received_before_the_phase_closed_still_counts(app):
    """Queued before the deadline, evaluated after it: the result stands."""
    from app.models import Submission, SubmissionStatus
    from app.services import defences
    from tests.conftest import SAMPLE_DEFENCE

    app.extensions["celery"].conf.task_always_eager = False  # the memory broker keeps the task: no one runs it
    student = make_user("dora", team="do-ra")
    competition.update_state(phase=Phase.DEFENCE, actor="tester")
    with SAMPLE_DEFENCE.open("rb") as f:
        response = app.test_client().post("/api/v1/defences", headers=api_token(student), data={"file": (f, "d.zip")})
    assert response.status_code == 202
    submission_id = response.get_json()["submission_id"]
    assert db.session.get(Submission, submission_id).status is SubmissionStatus.QUEUED
    schedule.add("phase", "Attack", clock.now(), actor="tester")
    schedule.apply_due()
    assert state().phase is Phase.ATTACK
    defences.run_evaluation(submission_id)  # what the worker does when it picks the task up
    db.session.expire_all()
    assert db.session.get(Submission, submission_id).status is SubmissionStatus.SUCCEEDED


@pytest.mark.parametrize("path", ["/admin/schedule", "/admin/announcements"])
def test_staff_forms_need_their_csrf_token(app, client, auth, admin, path):
    auth.login("admin")
    app.config["WTF_CSRF_ENABLED"] = True
    data = {
        "action": "phase",
        "phase": "Attack",
        "due_at": "2030-01-01T00:00",
        "title": "t",
        "body": "b",
        "expires_at": "2030-01-01T00:00",
    }
    response = client.post(path, data=data)
    assert response.status_code == 400
    assert schedule.pending() == [] and announcements.recent() == []
