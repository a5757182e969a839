"""Staff `flask` commands: create-admin, populate-test-users, flush-matches, flush-db, and the shell context."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Attack, AuditEntry, Defence, Match, Round, Submission, Team, User
from app.services import accounts, competition, maintenance
from app.storage import get_storage
from tests import factories
from tests.factories import make_user

DEMO = {
    "al-bo": ["alice", "bob"],
    "cha-di": ["charlie", "dimitri"],
    "eu-fra": ["eugene", "francois"],
    "ger-hec": ["gerald", "hector"],
    "ign-joh": ["ignatus", "john"],
}


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def fresh(statement):
    """Rows as stored now: the command ran in its own app context and session."""
    db.session.expire_all()
    return db.session.scalars(statement).all()


def can_log_in(app, username: str, password: str) -> bool:
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    return response.status_code == 302 and client.get("/index").status_code == 200


def create_admin(runner, *args: str, **kwargs):
    return runner.invoke(args=["create-admin", *args], **kwargs)


def make_played_round(number: int = 1) -> None:
    """A round with one match, its pinned defence and one attack, as generation and scoring would leave them."""
    alice = accounts.find_user("alice") or make_user("alice", team="al-bo")
    charlie = accounts.find_user("charlie") or make_user("charlie", team="cha-di")
    factories.make_defence(charlie.team, 0.5)
    (match,) = factories.make_round(number, [(alice.team, charlie.team)])
    factories.make_attack(match, 0.6)


# create-admin


def test_create_admin_with_password_option(app, runner):
    result = create_admin(runner, "boss", "--email", "boss@example.org", "--password", "boss-password")
    assert result.exit_code == 0, result.output
    assert "Admin boss created." in result.output
    assert can_log_in(app, "boss", "boss-password")
    assert accounts.find_user("boss").is_admin


def test_create_admin_prompts_for_the_password(app, runner):
    result = create_admin(runner, "boss", "--email", "boss@example.org", input="pw\npw\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.output
    assert "pw" not in result.output  # hidden input is not echoed
    assert can_log_in(app, "boss", "pw")
    assert not can_log_in(app, "boss", "other")


def test_created_admin_can_use_the_admin_pages(app, runner):
    create_admin(runner, "boss", "--email", "boss@example.org", "--password", "boss-password")
    client = app.test_client()
    client.post("/login", data={"username": "boss", "password": "boss-password"})
    assert client.get("/set_phase/").status_code == 200


def test_create_admin_with_an_invalid_username_fails(app, runner):
    result = create_admin(runner, "the boss", "--email", "boss@example.org", "--password", "pw")
    assert result.exit_code != 0
    assert "A username has 3 to 32 characters" in result.output
    assert accounts.find_user("the boss") is None


@pytest.mark.parametrize("username", ["alice", " Alice "])
def test_create_admin_with_a_taken_username_fails(app, runner, alice, username):
    result = create_admin(runner, username, "--email", "other@example.org", "--password", "pw")
    assert result.exit_code != 0
    assert "This username is taken" in result.output
    assert [u.username for u in fresh(sa.select(User).where(User.is_admin))] == []


def test_create_admin_with_a_taken_email_fails(app, runner, alice):
    result = create_admin(runner, "boss", "--email", "alice@example.org", "--password", "pw")
    assert result.exit_code != 0
    assert "already registered" in result.output
    assert accounts.find_user("boss") is None


# move-student


def team_of(username: str) -> str | None:
    db.session.expire_all()
    user = accounts.find_user(username)
    return user.team.name if user.team else None


def test_move_student_into_a_team_with_a_free_place(app, runner, alice):
    make_user("dave", team="da-ve")
    result = runner.invoke(args=["move-student", "dave", "al-bo"])
    assert result.exit_code == 0, result.output
    assert "dave is now in team al-bo." in result.output
    assert team_of("dave") == "al-bo"
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "move-student")).one()
    assert (entry.actor_name, entry.target, entry.after) == ("cli", "dave", {"team": "al-bo"})


def test_move_student_into_a_new_team(app, runner, alice):
    assert runner.invoke(args=["move-student", "alice", "fresh"]).exit_code != 0
    result = runner.invoke(args=["move-student", "alice", "fresh", "--create"])
    assert result.exit_code == 0, result.output
    assert team_of("alice") == "fresh"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "al-bo"], "No user nobody."),
        (["carol", "nobody"], "No team nobody: check the name, or pass --create to create it."),
        (["carol", "full"], "Team full already has 2 members: move one out first."),
        (["admin", "al-bo"], "admin is an admin"),
    ],
)
def test_move_student_refusals(app, runner, alice, args, message):
    make_user("carol", team="ca-ro")
    make_user("f1", team="full")
    make_user("f2", team="full")
    make_user("admin", admin=True)
    result = runner.invoke(args=["move-student", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert team_of("carol") == "ca-ro"


# populate-test-users


def demo_teams() -> dict[str, list[str]]:
    teams = fresh(sa.select(Team).order_by(Team.name))
    return {t.name: [m.username for m in t.members] for t in teams}


def test_populate_test_users(app, runner):
    result = runner.invoke(args=["populate-test-users"])
    assert result.exit_code == 0, result.output
    assert demo_teams() == DEMO
    admin = accounts.find_user("admin")
    assert admin.is_admin and admin.team is None
    for username in [*sum(DEMO.values(), []), "admin"]:
        assert can_log_in(app, username, "admin"), username


def test_populate_test_users_is_idempotent(app, runner):
    assert runner.invoke(args=["populate-test-users"]).exit_code == 0
    scipers = {u.username: u.sciper for u in fresh(sa.select(User))}
    result = runner.invoke(args=["populate-test-users"])
    assert result.exit_code == 0, result.output
    assert demo_teams() == DEMO
    assert count(User) == 11
    assert {u.username: u.sciper for u in fresh(sa.select(User))} == scipers
    assert can_log_in(app, "alice", "admin")


# flush-matches


def test_flush_matches(app, runner):
    make_played_round(2)
    users_before = count(User)
    result = runner.invoke(args=["flush-matches", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 matches and 1 attacks; round is 0." in result.output
    db.session.expire_all()
    assert (count(Match), count(Attack), count(Round)) == (0, 0, 0)
    assert competition.get_state().current_round == 0
    assert count(User) == users_before
    assert count(Defence) == 1 and count(Submission) == 2  # history stays: the defence and the attack uploads


def test_flush_matches_answered_no_keeps_them(app, runner):
    make_played_round(1)
    result = runner.invoke(args=["flush-matches"], input="n\n")
    assert result.exit_code != 0
    assert "Aborted" in result.output
    db.session.expire_all()
    assert (count(Match), count(Attack), count(Round)) == (1, 1, 1)
    assert competition.get_state().current_round == 1


# flush-db


def test_flush_db_answered_no_keeps_everything(app, runner, alice):
    result = runner.invoke(args=["flush-db"], input="n\n")
    assert result.exit_code != 0
    assert "Aborted" in result.output
    db.session.expire_all()
    assert count(User) == 1 and count(Team) == 1
    assert can_log_in(app, "alice", "secret-pw")


def test_flush_db_with_yes_deletes_users(app, runner, alice, admin, tmp_path):
    make_played_round(1)
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    for prefix in maintenance.STORED_PREFIXES:  # uploads, sets, the figures kept for pages
        get_storage().save(f"{prefix}/1/kept.json", kept)
    result = runner.invoke(args=["flush-db", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Database flushed." in result.output
    db.session.expire_all()
    assert (count(User), count(Team), count(Match), count(Submission)) == (0, 0, 0, 0)
    assert not can_log_in(app, "alice", "secret-pw")
    assert competition.get_state().current_round == 0
    assert {"figures", "similarity"} <= set(maintenance.STORED_PREFIXES)  # kept per row number (tests/web)
    assert [p for p in maintenance.STORED_PREFIXES if get_storage().exists(f"{p}/1/kept.json")] == []


def test_flush_db_answered_yes_at_the_prompt(app, runner, alice):
    result = runner.invoke(args=["flush-db"], input="y\n")
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert count(User) == 0


# flask shell


def test_shell_context_has_db_models_and_helpers(monkeypatch, app):
    monkeypatch.setenv("SRS_CONFIG", "testing")
    srs = importlib.import_module("srs")
    context = srs.app.make_shell_context()
    assert context["db"] is db
    for name, model in {"User": User, "Team": Team, "Submission": Submission, "Match": Match}.items():
        assert context[name] is model
    for helper in ("populate_test_users", "flush_db", "flush_matches", "create_admin"):
        assert callable(context[helper])
