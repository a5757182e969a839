"""Staff commands: `flask create-admin`, `populate-test-users`, `flush-matches`, `flush-db`, `sweep-submissions`."""

from __future__ import annotations

import click
from flask import Flask

from app.services import accounts, audit, maintenance, submissions


def init_app(app: Flask) -> None:
    for command in (create_admin, populate_test_users, flush_matches, flush_db, sweep_submissions):
        app.cli.add_command(command)


@click.command("create-admin")
@click.argument("username")
@click.option("--email", required=True, help="The admin's e-mail address.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted when omitted.")
def create_admin(username: str, email: str, password: str) -> None:
    """Create an admin account."""
    try:
        accounts.create_admin(username, email, password)
    except accounts.AccountError as exc:
        raise click.ClickException(exc.message) from exc
    audit.record_now(audit.CLI, "create-admin", None, {"username": username, "email": email}, target=username)
    click.echo(f"Admin {username} created.")


@click.command("populate-test-users")
def populate_test_users() -> None:
    """Recreate the demo teams (alice … john) and admin `admin`, all with password `admin`."""
    users = accounts.populate_test_users()
    click.echo(f"{len(users)} demo users ready (password 'admin').")


@click.command("flush-matches")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def flush_matches(yes: bool) -> None:
    """Delete every round, match and attack, and set the round back to 0."""
    if not yes:
        click.confirm("Delete every round, match and attack?", abort=True)
    counts = maintenance.flush_matches()
    audit.record_now(audit.CLI, "flush-matches", counts, {"matches": 0, "attacks": 0, "round": 0})
    click.echo(f"Deleted {counts['matches']} matches and {counts['attacks']} attacks; round is 0.")


@click.command("flush-db")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def flush_db(yes: bool) -> None:
    """Delete every row of every table and every stored file (the schema stays)."""
    if not yes:
        click.confirm("Delete ALL users, teams, submissions, matches and files?", abort=True)
    maintenance.flush_db()
    audit.record_now(audit.CLI, "flush-db", None, {"flushed": True})  # the one entry left after the flush
    click.echo("Database flushed.")


@click.command("sweep-submissions")
def sweep_submissions() -> None:
    """Enqueue stale queued submissions again and fail stale running ones (the worker does it every minute)."""
    counts = submissions.sweep()
    click.echo(f"Re-enqueued {counts['requeued']}, failed {counts['failed']}.")
