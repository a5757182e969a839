"""Staff commands: create-admin, move-student, populate-test-users, flush-matches, flush-db, sweep, export."""

from __future__ import annotations

import click
from flask import Flask

from app.services import accounts, exports, lifecycle, maintenance, rounds


def init_app(app: Flask) -> None:
    for command in (
        create_admin,
        move_student,
        populate_test_users,
        flush_matches,
        flush_db,
        sweep_submissions,
        export,
        close_round,
    ):
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
    click.echo(f"Admin {username} created.")


@click.command("move-student")
@click.argument("username")
@click.argument("team")
@click.option("--create", is_flag=True, help="Create TEAM when it does not exist.")
def move_student(username: str, team: str, create: bool) -> None:
    """Move a student into TEAM (no join code needed: staff decide)."""
    try:
        moved_to = accounts.move_student(username, team, create=create)
    except accounts.AccountError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{username} is now in team {moved_to.name}.")


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
    click.echo(f"Deleted {counts['matches']} matches and {counts['attacks']} attacks; round is 0.")


@click.command("flush-db")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def flush_db(yes: bool) -> None:
    """Delete every row of every table and every stored file (the schema stays)."""
    if not yes:
        click.confirm("Delete ALL users, teams, submissions, matches and files?", abort=True)
    maintenance.flush_db()
    click.echo("Database flushed.")


@click.command("sweep-submissions")
def sweep_submissions() -> None:
    """Enqueue stale queued submissions again and fail stale running ones (the worker does it every minute)."""
    counts = lifecycle.sweep()
    click.echo(f"Re-enqueued {counts['requeued']}, failed {counts['failed']}, cleaned {counts['cleaned']} folders.")


@click.command("export")
@click.argument("name", type=click.Choice(exports.NAMES))
@click.option("--round", "number", type=int, help="One round only (default: all; the overall leaderboard).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def export(name: str, number: int | None, output: str | None) -> None:
    """Export the leaderboard (grading sheet), submissions or matches as CSV."""
    try:
        table = exports.export(name, number)
    except exports.ExportError as exc:
        raise click.ClickException(exc.message) from exc
    if output is None:
        click.echo(table.as_csv(), nl=False)
        return
    with open(output, "w", newline="", encoding="utf-8") as out:
        out.write(table.as_csv())
    click.echo(f"{len(table.rows)} rows written to {output}.", err=True)


@click.command("close-round")
@click.argument("number", type=int)
def close_round(number: int) -> None:
    """Close round NUMBER: publish its full scores and mail them to its teams."""
    try:
        rounds.close_round(number)
    except (rounds.NoSuchRound, rounds.RoundConflict) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Round {number} is closed: its full scores are published.")
