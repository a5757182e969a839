"""JSON API v1: tokens, who am I, the competition state, submissions' visibility, and JSON errors."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest

from app import clock
from app.extensions import db
from app.services import accounts, competition
from tests.factories import api_token, make_submission, make_user

API = "/api/v1"


def basic(username: str, password: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def api_error(response, status: int) -> str:
    """Assert the response is the JSON error the contract promises, with this status; return its code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] and body["message"]
    return body["error"]


def stored_state():
    db.session.expire_all()
    return competition.get_state()


# Tokens


def test_token_for_basic_credentials(client, alice):
    response = client.post(f"{API}/tokens", headers=basic("alice", "secret-pw"))
    assert response.status_code == 201
    body = response.get_json()
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).replace(tzinfo=None)
    assert clock.now() + timedelta(hours=23) < expires_at <= clock.now() + timedelta(hours=24, minutes=1)
    me = client.get(f"{API}/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.get_json()["username"] == "alice"


def test_token_with_wrong_password_is_401(client, alice):
    assert api_error(client.post(f"{API}/tokens", headers=basic("alice", "wrong")), 401) == "unauthorized"


def test_token_for_unknown_user_is_401(client, alice):
    api_error(client.post(f"{API}/tokens", headers=basic("nobody", "secret-pw")), 401)


def test_token_without_credentials_is_401(client, alice):
    api_error(client.post(f"{API}/tokens"), 401)


def test_revoked_token_no_longer_works(client, alice):
    headers = api_token(alice)
    assert client.get(f"{API}/me", headers=headers).status_code == 200
    response = client.delete(f"{API}/tokens", headers=headers)
    assert response.status_code == 204
    api_error(client.get(f"{API}/me", headers=headers), 401)


def test_revoking_one_token_keeps_the_others(client, alice):
    first, second = api_token(alice), api_token(alice)
    assert client.delete(f"{API}/tokens", headers=first).status_code == 204
    assert client.get(f"{API}/me", headers=second).status_code == 200


def test_expired_token_is_401(client, alice):
    row, token = accounts.issue_token(alice)
    row.expires_at = clock.now() - timedelta(minutes=1)
    db.session.commit()
    api_error(client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}), 401)


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer ", "Token abc", "Basic YWxpY2U6c2VjcmV0LXB3"])
def test_bad_authorization_is_401(client, alice, header):
    api_error(client.get(f"{API}/me", headers={"Authorization": header}), 401)


# Who am I


def test_me_of_a_student_in_a_team(client, alice):
    body = client.get(f"{API}/me", headers=api_token(alice)).get_json()
    assert body == {
        "username": "alice",
        "is_admin": False,
        "team_id": alice.team.id,
        "team_name": "al-bo",
        "team_join_code": alice.team.join_code,
        "uploads_left": {"defence": 10, "attack": 20},  # the default quotas, none used
    }


def test_me_without_a_team_has_null_team_fields(client, admin):
    body = client.get(f"{API}/me", headers=api_token(admin)).get_json()
    assert body == {
        "username": "admin",
        "is_admin": True,
        "team_id": None,
        "team_name": None,
        "team_join_code": None,
        "uploads_left": {"defence": None, "attack": None},  # staff: no quota
    }


# Competition state


def test_get_competition(client, app, alice):
    response = client.get(f"{API}/competition", headers=api_token(alice))
    assert response.status_code == 200
    assert response.get_json() == {
        "round": 0,
        "phase": "None",
        "registration_open": True,
        "nb_classes": app.config["NB_CLASSES"],
        "nb_traces_to_classify": app.config["NB_TRACES_TO_CLASSIFY"],
        "defence_settings": competition.defence_settings_as_dict(app.config),
    }
    assert response.get_json()["defence_settings"]["max_rows"] == app.config["MAX_ROWS"]


def test_admin_puts_competition_state(client, admin, alice):
    response = client.put(f"{API}/competition", headers=api_token(admin), json={"phase": "Attack"})
    assert response.status_code == 200
    assert response.get_json()["phase"] == "Attack"
    assert response.get_json()["registration_open"] is True
    response = client.put(f"{API}/competition", headers=api_token(admin), json={"registration_open": False})
    assert response.get_json()["phase"] == "Attack"
    assert response.get_json()["registration_open"] is False
    seen = client.get(f"{API}/competition", headers=api_token(alice)).get_json()
    assert (seen["phase"], seen["registration_open"]) == ("Attack", False)
    assert (stored_state().phase.value, stored_state().registration_open) == ("Attack", False)


def test_put_competition_both_fields_at_once(client, admin):
    body = {"phase": "Both", "registration_open": False}
    response = client.put(f"{API}/competition", headers=api_token(admin), json=body)
    assert response.status_code == 200
    assert {k: response.get_json()[k] for k in body} == body


def test_student_cannot_put_competition(client, alice):
    response = client.put(f"{API}/competition", headers=api_token(alice), json={"phase": "Attack"})
    assert api_error(response, 403) == "forbidden"
    assert stored_state().phase.value == "None"


def test_put_competition_without_token_is_401(client, admin):
    api_error(client.put(f"{API}/competition", json={"phase": "Attack"}), 401)
    assert stored_state().phase.value == "None"


@pytest.mark.parametrize(
    "body",
    [
        {"phase": "Holiday"},
        {"phase": 2},
        {"phase": None},
        {"registration_open": "yes"},
        {"registration_open": 1},
        {"phase": "Attack", "registration_open": "false"},
        {},
        {"round": 3},
        ["phase", "Attack"],
    ],
)
def test_put_competition_bad_body_is_400_and_changes_nothing(client, admin, body):
    api_error(client.put(f"{API}/competition", headers=api_token(admin), json=body), 400)
    assert (stored_state().phase.value, stored_state().registration_open) == ("None", True)


def test_put_competition_bad_phase_names_the_choices(client, admin):
    response = client.put(f"{API}/competition", headers=api_token(admin), json={"phase": "Holiday"})
    api_error(response, 400)
    message = response.get_json()["message"]
    assert "Holiday" in message
    assert all(phase in message for phase in ("Defence", "Attack", "Both", "None"))


# The browser session on reads, never on changes


def test_reads_accept_the_login_session(client, auth, alice):
    auth.login()
    me = client.get(f"{API}/me")
    assert me.status_code == 200 and me.get_json()["username"] == "alice"
    assert client.get(f"{API}/competition").status_code == 200


def test_changes_do_not_accept_the_login_session(client, auth, admin):
    auth.login("admin")
    api_error(client.put(f"{API}/competition", json={"phase": "Attack"}), 401)
    assert stored_state().phase.value == "None"
    api_error(client.delete(f"{API}/tokens"), 401)


def test_reads_without_session_or_token_are_401(client, alice):
    api_error(client.get(f"{API}/me"), 401)
    api_error(client.get(f"{API}/competition"), 401)


# Submissions


def test_own_team_submission_is_visible(client, alice):
    bob = make_user("bob", team="al-bo")
    submission = make_submission(alice.team, bob)
    response = client.get(f"{API}/submissions/{submission.id}", headers=api_token(alice))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["kind"], body["status"]) == (submission.id, "defence", "queued")
    assert {"error", "results", "created_at", "finished_at"} <= set(body)


def test_another_teams_submission_is_404(client, alice):
    charlie = make_user("charlie", team="cha-di")
    submission = make_submission(charlie.team, charlie)
    assert api_error(client.get(f"{API}/submissions/{submission.id}", headers=api_token(alice)), 404) == "not_found"


def test_admin_sees_any_submission(client, alice, admin):
    submission = make_submission(alice.team, alice)
    assert client.get(f"{API}/submissions/{submission.id}", headers=api_token(admin)).status_code == 200


def test_unknown_submission_is_404(client, alice):
    api_error(client.get(f"{API}/submissions/999", headers=api_token(alice)), 404)


# Errors are JSON everywhere under /api


def test_unknown_api_path_is_json_404(client):
    assert api_error(client.get(f"{API}/no-such-thing"), 404) == "not_found"


def test_wrong_method_is_json_405(client):
    assert api_error(client.get(f"{API}/tokens"), 405) == "method_not_allowed"
