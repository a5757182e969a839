"""Staff commands: create-admin, move-student, populate-test-users, flush-matches, flush-db, sweep, export,
rerun, rescore, set-reference, rewrite-sets, queue-baselines, close-round, exposed-defences."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app

from app.services import (
    accounts,
    audit,
    baseline,
    exports,
    leaderboard,
    maintenance,
    references,
    reruns,
    rescore,
    round_sets,
    rounds,
    set_layout,
)
from app.services.errors import CompetitionError


def init_app(app: Flask) -> None:
    for command in (
        create_admin,
        move_student,
        populate_test_users,
        flush_matches,
        flush_db,
        sweep_submissions,
        export,
        rerun,
        rescore_command,
        set_reference,
        rewrite_sets,
        queue_baselines,
        close_round,
        exposed_defences,
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
    audit.record_now(audit.CLI, "create-admin", None, {"username": username, "email": email}, target=username)
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
    audit.record_now(audit.CLI, "move-student", None, {"team": moved_to.name}, target=username)
    click.echo(f"{username} is now in team {moved_to.name}.")


@click.command("populate-test-users")
def populate_test_users() -> None:
    """Recreate the demo teams (alice … john) and admin `admin`, all with password `admin` (not in production)."""
    if current_app.config["PRODUCTION"]:
        raise click.ClickException(
            "populate-test-users resets `admin` and the demo accounts to the password `admin`: it is refused in the "
            "production config. Create staff accounts with `flask create-admin` instead."
        )
    users = accounts.populate_test_users()
    audit.record_now(
        audit.CLI, "populate-test-users", None, {"users": len(users)}, note="demo accounts, password admin"
    )
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
    counts = maintenance.sweep()
    click.echo(f"Re-enqueued {counts['requeued']}, failed {counts['failed']}, cleaned {counts['cleaned']} folders.")
    click.echo(f"Baseline attacks: re-enqueued {counts['baseline_requeued']}, failed {counts['baseline_failed']}.")
    click.echo(f"Round sets: re-enqueued {counts['round_sets_requeued']}.")


@click.command("export")
@click.argument("name", type=click.Choice(exports.NAMES))
@click.option("--round", "number", type=int, help="One round only (default: all; the overall leaderboard).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def export(name: str, number: int | None, output: str | None) -> None:
    """Export the leaderboard (grading sheet), submissions or matches as CSV."""
    try:
        table = exports.export(name, number, actor=audit.CLI)
    except exports.ExportError as exc:
        raise click.ClickException(exc.message) from exc
    if output is None:
        click.echo(table.as_csv(), nl=False)
        return
    with open(output, "w", newline="", encoding="utf-8") as out:
        out.write(table.as_csv())
    click.echo(f"{len(table.rows)} rows written to {output}.", err=True)


CLI_USER = "cli"  # who staff actions from a shell are recorded as


@click.command("rerun")
@click.argument("ids", nargs=-1, type=int)
@click.option(
    "--failed-since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    help="Also re-run every submission that failed at or after this UTC date (YYYY-MM-DD[ HH:MM]).",
)
def rerun(ids: tuple[int, ...], failed_since) -> None:
    """Evaluate submissions IDS again (their earlier results stay in their history)."""
    if not ids and failed_since is None:
        raise click.UsageError("Name submission ids, or --failed-since DATE, or both.")
    refused = 0
    for submission_id in ids:
        try:
            reruns.rerun_submission(submission_id, CLI_USER)
            click.echo(f"Submission #{submission_id} queued again.")
        except CompetitionError as exc:
            refused += 1
            click.echo(exc.message, err=True)
    if failed_since is not None:
        done = reruns.rerun_failed_since(failed_since, CLI_USER)
        click.echo(f"{len(done.rerun)} submissions that failed since {failed_since:%Y-%m-%d %H:%M} UTC queued again.")
        for submission, reason in done.skipped:
            refused += 1
            click.echo(f"Skipped #{submission.id}: {reason}", err=True)
    if refused:
        raise click.exceptions.Exit(1)


@click.command("rescore")
@click.option("--round", "number", type=int, help="One round (default: every generated round).")
def rescore_command(number: int | None) -> None:
    """Recompute every attack score from the stored files and list the differences (exit 1 if any)."""
    numbers = [number] if number is not None else rescore.rounds()
    differences = 0
    for n in numbers:
        try:
            report = rescore.rescore_round(n, actor=audit.CLI)
        except rescore.RescoreError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"Round {n}: {len(report.lines)} scores recomputed, {len(report.differences)} differ.")
        for line in report.lines:
            if line.same and not line.notes:
                continue
            match = line.attack.match
            stored = f"stored accuracy {line.attack.accuracy:.6f}, ROC-AUC {line.attack.roc_auc:.6f}"
            if line.recomputed is None:
                now = line.problem
            else:
                now = f"recomputed {line.recomputed.accuracy:.6f}, {line.recomputed.roc_auc:.6f}"
            verdict = "same" if line.same else "DIFFERS"
            notes = "".join(f"; {note}" for note in line.notes)
            click.echo(
                f"  {verdict}: {match.attacker.name} -> {match.defender.name} (attack {line.attack.id}, "
                f"submission #{line.attack.submission_id}): {stored}; {now}{notes}"
            )
        differences += len(report.differences)
        if leaderboard.scoring() == "tradeoff":
            _echo_board_diff(n)
    if differences:
        raise click.exceptions.Exit(1)


def _echo_board_diff(number: int) -> None:
    """What the tradeoff formula's move from ROC-AUC to accuracy changed on a round's board."""
    rows = leaderboard.previous_formula_diff(number)
    moved = [r for r in rows if r["rank"] != r["rank_before"]]
    click.echo(
        f"Round {number} board (tradeoff): leakage and attack scores are now accuracy advantages "
        f"(previously 2 × (ROC-AUC − 0.5)); {len(moved)} of {len(rows)} teams changed rank."
    )

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for r in rows:
        click.echo(
            f"  {r['team_name']}: rank {r['rank_before']} -> {r['rank']}, round score {fmt(r['score_before'])} -> "
            f"{fmt(r['score'])}, leakage {fmt(r['leakage_before'])} -> {fmt(r['leakage'])}"
        )


@click.command("set-reference")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def set_reference(path: str) -> None:
    """Make PATH (a zip of undefended traffic, defence format) the reference defences are measured against."""
    try:
        row = references.set_reference(Path(path), source=Path(path).name, by=audit.CLI)
    except references.ReferenceRefused as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"Reference #{row.id} ({row.source}: {row.nb_cells} cells, {row.nb_captures} captures, sha256 "
        f"{row.sha256[:12]}) is now current; defences evaluated from now on are measured against it."
    )


@click.command("rewrite-sets")
def rewrite_sets() -> None:
    """Rewrite stored sets from before the layout rule: test captures by capture_id, train rows by cell and rep."""
    counts = set_layout.rewrite_sets()
    click.echo(f"{counts['rewritten']} sets rewritten, {counts['unchanged']} already in order.")


@click.command("queue-baselines")
@click.option("--retry-failed", is_flag=True, help="Also run the failed baseline attacks again.")
def queue_baselines(retry_failed: bool) -> None:
    """Queue the baseline attack for accepted defences that have none (defences accepted before it existed)."""
    count = baseline.queue_missing(retry_failed=retry_failed)
    click.echo(f"Queued {count} baseline attacks.")


@click.command("close-round")
@click.argument("number", type=int)
def close_round(number: int) -> None:
    """Close round NUMBER: publish its final scores (private subset) and mail them to its teams."""
    try:
        rounds.close_round(number, actor=audit.CLI)
    except (rounds.NoSuchRound, rounds.RoundConflict) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Round {number} is closed: its final scores (on the private subset) are published.")


@click.command("exposed-defences")
def exposed_defences() -> None:
    """List defences whose test labels were handed out: split anew per round before sets were per attacker."""
    found = round_sets.exposed_defences()
    if not found:
        click.echo("No defence was exposed: every test pool stayed out of the train sets handed out.")
        return
    latest = {d.id for d in rounds.latest_defences().values()}
    for defence, numbers in found:
        pinned = " It is still its team's latest defence: it plays again next round unless they upload anew." * (
            defence.id in latest
        )
        click.echo(
            f"Defence {defence.id} of team {defence.team.name}: the train sets of round(s) "
            f"{', '.join(map(str, numbers))} held most of its test pool, labelled.{pinned}"
        )
    click.echo(
        "Anyone who kept those train sets can label the pool's captures: ask these teams to upload their defence "
        "again (a new upload draws a new pool), or discount their attackers' scores against them."
    )
