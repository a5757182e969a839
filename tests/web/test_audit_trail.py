"""Staff actions leave a trace: closing a round (page, API, `flask close-round`), downloads of exports and of the
audit log itself, `flask populate-test-users`, which production refuses."""

from __future__ import annotations

import pytest

from app.services import audit
from tests.factories import api_token, make_round, make_team


@pytest.fixture
def three_rounds(app):
    teams = [make_team("al-bo"), make_team("cha-di")]
    for number in (1, 2, 3):
        make_round(number, [(teams[0], teams[1]), (teams[1], teams[0])])


def test_closing_a_round_is_recorded_whoever_closes_it(client, auth, admin, runner, three_rounds):
    auth.login("admin")
    assert client.post("/close_round/1").status_code == 302
    assert client.post("/api/v1/rounds/2/close", headers=api_token(admin)).status_code == 200
    assert runner.invoke(args=["close-round", "3"]).exit_code == 0
    entries = {e.target: e for e in audit.last_entries("close-round")}
    assert set(entries) == {"round 1", "round 2", "round 3"}
    assert [entries[f"round {n}"].actor_name for n in (1, 2, 3)] == ["admin", "admin", "cli"]
    assert entries["round 1"].after == {"round": 1, "open": False}


def test_downloads_of_exports_and_of_the_audit_log_are_recorded(client, auth, admin):
    auth.login("admin")
    assert client.get("/admin/exports/matches.csv").status_code == 200
    assert client.get("/api/v1/admin/exports/submissions", headers=api_token(admin)).status_code == 200
    exported = audit.last_entries("export")  # recorded by exports.export itself, for the page, the API and the CLI
    assert sorted(e.after["name"] for e in exported) == ["matches", "submissions"]
    assert {e.actor_name for e in exported} == {"admin"}
    first = client.get("/admin/audit.csv").get_data(as_text=True)
    assert "download-audit-log" not in first  # the log read, then its download recorded
    assert [e.actor_name for e in audit.last_entries("download-audit-log")] == ["admin"]


def test_populate_test_users_is_recorded_and_refused_in_production(app, runner):
    assert runner.invoke(args=["populate-test-users"]).exit_code == 0
    (entry,) = audit.last_entries("populate-test-users")
    assert entry.actor_name == "cli" and entry.after["users"] > 0
    app.config["PRODUCTION"] = True
    from flask import current_app

    current_app.config["PRODUCTION"] = True  # the twin app the CLI runs in
    refused = runner.invoke(args=["populate-test-users"])
    assert refused.exit_code == 1 and "refused in the production config" in refused.output
    assert "flask create-admin" in refused.output
    assert len(audit.last_entries("populate-test-users")) == 1
