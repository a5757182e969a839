"""`srs` prints what the server sends as written (no Rich markup from team names or messages) and does not send
a password to a plain http:// address of another machine without --insecure."""

from __future__ import annotations

from app.extensions import db
from app.models import SubmissionStatus
from tests import factories
from tests.client.served import Srs, served


def test_markup_in_team_names_prints_as_written(app, tmp_path):
    """A team named `[/]x` used to crash `srs leaderboard` for everyone; `[link=...]` made a link."""
    alice = factories.make_user("alice", team="[/]x")
    factories.make_defence(alice.team, utility_score=5.0)
    factories.make_defence(factories.make_team("[link=e]c[/]"), utility_score=4.0)
    token = factories.api_token(alice)["Authorization"].split()[1]
    with served(app) as url:
        srs = Srs(tmp_path / "home", url, token)
        board = srs("leaderboard")
        status = srs("status")
    assert board.exit_code == 0, board.output
    assert "[/]x" in board.output and "[link=e]c[/]" in board.output
    assert "\x1b]8;" not in board.output  # no terminal hyperlink escape
    assert status.exit_code == 0 and "team [/]x" in status.output


def test_a_server_message_with_markup_prints_as_written(app, tmp_path):
    alice = factories.make_user("alice", team="al-bo")
    failed = factories.make_submission(alice.team, alice, status=SubmissionStatus.FAILED)
    failed.error = "Row 3: [/] is not a number [link=e]here[/]"
    db.session.commit()
    token = factories.api_token(alice)["Authorization"].split()[1]
    with served(app) as url:
        result = Srs(tmp_path / "home", url, token)("submissions", str(failed.id))
    assert result.exit_code == 0 and "Row 3: [/] is not a number [link=e]here[/]" in result.output
    assert "failed" in result.output


def test_login_refuses_plain_http_to_another_machine(app, tmp_path):
    srs = Srs(tmp_path / "home", "http://srs.example.org")
    refused = srs("login", "--username", "alice", "--password", "secret-pw")
    assert refused.exit_code == 1
    assert "plain http" in refused.stderr and "https://" in refused.stderr and "--insecure" in refused.stderr
    factories.make_user("alice", team="al-bo")
    with served(app) as url:  # http to this machine (127.0.0.1) is fine
        local = Srs(tmp_path / "home", url)("login", "--username", "alice", "--password", "secret-pw")
    assert local.exit_code == 0, local.output
    insecure = srs("login", "--url", "http://10.1.2.3:9", "--username", "a", "--password", "b", "--insecure")
    assert "plain http" not in insecure.stderr  # allowed through: it fails only because nothing listens there
