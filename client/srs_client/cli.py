"""`srs`: log in, upload and follow, download, read the leaderboard, validate files before uploading."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from srs_client import __version__, config
from srs_client.errors import ApiError, ClientError

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

    from srs_client.api import Api

POLL_SECONDS = 1.0


class LazyConsole:
    """rich's Console, made on first use: a command that prints JSON (scripts) never imports rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console = None

    @property
    def console(self) -> Any:
        """The rich Console itself (for rich's own objects, such as a progress bar)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


# Markup off: team names, file names and messages come from the server, and a `[/]` or `[link=...]` in them
# must print as written, not crash the command or make links. Styled words go through styled() instead.
out = LazyConsole(highlight=False, soft_wrap=True, markup=False)
err = LazyConsole(stderr=True, highlight=False, markup=False)


def styled(*parts: str | tuple[str, str]) -> Any:
    """A rich Text of plain strings and (text, style) pairs: styles without parsing any text as markup."""
    from rich.text import Text

    return Text.assemble(*parts)


def make_table(*columns: str, title: str | None = None) -> Table:
    from rich.table import Table

    return Table(*columns, title=title)


class SrsGroup(click.Group):
    """Turns ClientError into the server's message and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            message = exc.message
            if isinstance(exc, ApiError) and exc.status == 401 and ctx.invoked_subcommand != "login":
                message += " Run `srs login` to get a new token."
            if ctx.meta.get("srs_json"):
                click.echo(json.dumps({"error": exc.code or "client_error", "message": message, "status": exc.status}))
            err.print(styled(("Error:", "bold red"), f" {message}"))
            ctx.exit(1)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["srs_json"] = True
    return value


def json_option(f):
    return click.option(
        "--json", "as_json", is_flag=True, callback=_set_json, expose_value=True, help="Print JSON for scripts."
    )(f)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def secure_enough(url: str) -> bool:
    """Whether credentials may go to url: https, or http to this machine (loopback) only."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(url: str, token: str | None = None) -> Api:
    """An Api client; srs_client.api is imported on first use, so offline commands never load requests."""
    from srs_client.api import Api

    return Api(url, token)


def api(require_token: bool = True) -> Api:
    creds = config.load()
    if require_token and not creds.token:
        raise ClientError("You are not logged in: run `srs login` (or set SRS_TOKEN).")
    return connect(creds.url, creds.token)


def progress_bar(description: str, quiet: bool) -> Progress:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err.console,
        transient=True,
        disable=quiet,
    )


@click.group(cls=SrsGroup)
@click.version_option(__version__, prog_name="srs")
def cli() -> None:
    """Secret Race Strolling from the terminal. Log in first: `srs login --url https://...`."""


@cli.command()
@click.option("--url", help="Address of the platform, e.g. https://srs.example.org (default: the saved one).")
@click.option("--username", prompt=True, help="Your username (asked when omitted).")
@click.option("--password", prompt=True, hide_input=True, help="Your password (asked when omitted; safer).")
@click.option("--insecure", is_flag=True, help="Allow a plain http:// address other than this machine's.")
@json_option
def login(url: str | None, username: str, password: str, insecure: bool, as_json: bool) -> None:
    """Exchange your username and password for a token, saved in your config folder (mode 600)."""
    url = (url or config.load().url).rstrip("/")
    if not insecure and not secure_enough(url):
        raise ClientError(
            f"{url} is plain http: your password and token would cross the network unencrypted. Use the https:// "
            "address, or pass --insecure if you really mean it."
        )
    answer = connect(url).login(username, password)
    path = config.save(url, answer["token"], answer.get("expires_at"))
    if as_json:
        emit({"url": url, "username": username, "expires_at": answer.get("expires_at"), "saved_to": str(path)})
        return
    out.print(f"Logged in to {url} as {username}; token saved in {path} (valid until {answer.get('expires_at')}).")
    if os.environ.get("SRS_TOKEN"):
        err.print("Note: SRS_TOKEN is set in your environment and overrides the saved token.")


@cli.command()
@json_option
def logout(as_json: bool) -> None:
    """Revoke the saved token on the server and delete it."""
    creds = config.load()
    revoked = False
    if creds.token:
        try:
            connect(creds.url, creds.token).json("DELETE", "/tokens")
            revoked = True
        except ApiError as exc:
            if exc.status != 401:  # an expired token is as good as revoked
                raise
    removed = config.forget()
    if as_json:
        emit({"revoked": revoked, "removed": removed})
    else:
        out.print("Logged out." if (revoked or removed) else "You were not logged in.")


@cli.command()
@json_option
def status(as_json: bool) -> None:
    """You, your team, the phase and round, and your team's latest defence and attacks."""
    client = api()
    me = client.json("GET", "/me")
    state = client.json("GET", "/competition")
    items = client.json("GET", "/submissions", params={"per_page": 100})["items"] if me.get("team_id") else []
    defence = next((s for s in items if s["kind"] == "defence"), None)
    attacks = [s for s in items if s["kind"] == "attack" and s["round"] == state["round"]]
    data = {
        "url": client.url,
        "user": me,
        "competition": state,
        "next_deadline": state.get("next_deadline"),
        "latest_defence": defence,
        "latest_attacks": attacks[:5],
    }
    if as_json:
        emit(data)
        return
    team = me.get("team_name") or "no team yet (join one on the website)"
    out.print(
        styled((me["username"], "bold"), f"{' (admin)' if me.get('is_admin') else ''} at {client.url}, team {team}")
    )
    out.print(f"Round {state['round']}, phase {state['phase']}")
    if state.get("next_deadline"):
        out.print(f"Next deadline: {state['next_deadline']}")
    if defence:
        out.print(f"Latest defence: {_one_line(defence)}")
    elif me.get("team_id"):
        out.print("Latest defence: none yet (srs defence upload FILE)")
    for attack in attacks[:5]:
        out.print(f"Attack this round: {_one_line(attack)}")


def _one_line(s: dict) -> str:
    line = f"#{s['id']} {s['status']} ({s['original_filename'] or 'upload'}, {s['created_at']})"
    results = s.get("results") or {}
    if s["status"] == "succeeded" and results.get("utility_score") is not None:
        line += f", utility {results['utility_score']:.3f}"
    if s["status"] == "failed" and s.get("error"):
        line += f": {s['error']}"
    return line


def _upload(kind: str, file: Path, wait: bool, timeout: float, as_json: bool) -> None:
    client = api()
    endpoint = "/defences" if kind == "defence" else "/attacks"
    with progress_bar(f"Uploading {file.name}", as_json) as bar:
        task = bar.add_task("upload", total=file.stat().st_size)

        def report(sent: int, total: int) -> None:
            bar.update(task, completed=sent, total=total)

        answer = client.upload(file, endpoint, report)
    sid = answer["submission_id"]
    if not wait:
        if as_json:
            emit(answer)
        else:
            out.print(f"Uploaded: submission #{sid} is queued. Follow it with `srs submissions {sid}`.")
        return
    result = _wait(client, sid, timeout, as_json)
    if as_json:
        emit(result)
    else:
        show_submission(result)
    if result["status"] != "succeeded":
        sys.exit(1)


def _wait(client: Api, sid: int, timeout: float, quiet: bool) -> dict:
    deadline = time.monotonic() + timeout
    with err.status(f"Submission #{sid}: queued", spinner="dots") if not quiet else _Null() as spinner:
        while True:
            data = client.json("GET", f"/submissions/{sid}")
            if data["status"] in ("succeeded", "failed"):
                return data
            if spinner is not None:
                stage = f": {data['progress']}" if data.get("progress") else ""
                spinner.update(f"Submission #{sid}: {data['status']}{stage}")
            if time.monotonic() > deadline:
                raise ClientError(
                    f"Submission #{sid} is still {data['status']} after {timeout:.0f} s; "
                    f"follow it later with `srs submissions {sid}`."
                )
            time.sleep(POLL_SECONDS)


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def show_submission(s: dict) -> None:
    """Print a submission: status, every check and the results."""
    colour = {"succeeded": "green", "failed": "red"}.get(s["status"], "yellow")
    out.print(styled(f"Submission #{s['id']} ({s['kind']}, round {s.get('round')}): ", (s["status"], f"bold {colour}")))
    if s.get("error"):
        out.print(s["error"])
    show_results(s.get("results") or {})


def show_results(results: dict) -> None:
    """Print every check, the utility and the scores of a submission's (or a validation's) results."""
    if results.get("checks"):
        show_checks(results["checks"])
    if results.get("utility_score") is not None:
        out.print(styled("Utility score: ", (f"{results['utility_score']:.4f}", "bold")))
    if results.get("utility"):
        table = make_table("measure", "value")
        for key, value in results["utility"].items():
            table.add_row(str(key), str(value))
        out.print(table)
    scores = results.get("scores")
    if scores:
        rows = scores.values() if isinstance(scores, dict) else scores
        table = make_table("target team", "accuracy", "top-5 accuracy", "ROC-AUC", "captures", title="Scores")
        for sc in rows:
            table.add_row(
                str(sc.get("team_id")),
                _num(sc.get("accuracy")),
                _num(sc.get("top5_accuracy")),
                _num(sc.get("roc_auc")),
                str(sc.get("nb_captures", "")),
            )
        out.print(table)
        if results.get("scores_note"):  # while the round is open: scores on the hidden public subset
            out.print(f"Scores on the {results['scores_note']}.")


def _width() -> int:
    """Columns of the terminal (COLUMNS when set; 80 when the output is not a terminal)."""
    import shutil

    return shutil.get_terminal_size().columns


def _wrapped(text: str) -> str:
    import textwrap

    return textwrap.fill(text, max(_width(), 40))


def show_checks(checks: list[dict]) -> None:
    """Every check on a line of its own: ok or FAILED, its name, its message and up to five examples, wrapped to the
    terminal under the message. Plain text through click (no rich), so `srs validate attack` starts without rich."""
    import textwrap

    name_width = max(len(c["name"]) for c in checks)
    indent = " " * (2 + len("FAILED") + 2 + name_width + 2)
    width = max(_width() - len(indent), 30)
    click.echo("Checks:")
    for c in checks:
        mark = click.style("ok".ljust(6), fg="green") if c["passed"] else click.style("FAILED", fg="red", bold=True)
        lines = textwrap.wrap(c["message"], width) or [""]
        if c.get("examples"):
            lines += textwrap.wrap("e.g. " + "; ".join(str(e) for e in c["examples"][:5]), width)
        click.echo(f"  {mark}  {c['name']:<{name_width}}  {lines[0]}")
        for line in lines[1:]:
            click.echo(indent + line)


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


UPLOAD_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@cli.group()
def defence() -> None:
    """Your team's defence (a zip holding one CSV cell_id,rep,direction_size,timestamp)."""


@defence.command("upload")
@click.argument("file", type=UPLOAD_FILE)
@click.option("--wait", is_flag=True, help="Follow the evaluation; exit 0 only when the defence is accepted.")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait with --wait.")
@json_option
def defence_upload(file: Path, wait: bool, timeout: float, as_json: bool) -> None:
    """Upload a defence."""
    _upload("defence", file, wait, timeout, as_json)


@cli.group()
def attack() -> None:
    """Your attacks: download your targets' sets, upload class probabilities."""


@attack.command("upload")
@click.argument("file", type=UPLOAD_FILE)
@click.option("--wait", is_flag=True, help="Follow the scoring; exit 0 only when the attack is accepted.")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait with --wait.")
@json_option
def attack_upload(file: Path, wait: bool, timeout: float, as_json: bool) -> None:
    """Upload an attack (a zip holding one CSV team_id,capture_id,proba_class_1..N)."""
    _upload("attack", file, wait, timeout, as_json)


@attack.command("download")
@click.option("--round", "round_", type=int, help="The round (the server serves the current round's sets).")
@click.option(
    "-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("."), help="Folder to unpack into."
)
@json_option
def attack_download(round_: int | None, output: Path, as_json: bool) -> None:
    """Download your targets' train and test sets and unpack the per-target zips into a folder."""
    client = api()
    current = client.json("GET", "/competition")["round"]
    if round_ is not None and round_ != current:
        raise ClientError(f"Only the current round's sets can be downloaded: round {current}, not {round_}.")
    output.mkdir(parents=True, exist_ok=True)
    archive = output / f".srs-round-{current}-download.zip"
    try:
        with progress_bar("Downloading the sets", as_json) as bar:
            task = bar.add_task("download", total=None)
            client.download("/attack/sets", archive, lambda got, total: bar.update(task, completed=got, total=total))
        from srs_client.api import unpack_sets

        files = unpack_sets(archive, output)
    finally:
        archive.unlink(missing_ok=True)
    from srs_client.validate import index_sets

    try:
        index_sets(output)  # the test sets' capture ids, so that `srs validate attack` need not unzip them
    except ClientError:
        pass  # only a cache: `srs validate attack` reads the sets itself and says what is wrong with them
    if as_json:
        emit({"round": current, "directory": str(output), "files": files})
        return
    out.print(f"Round {current}: unpacked {len(files)} files into {output}:")
    for name in files:
        out.print(f"  {name}")


@cli.command()
@click.option("--round", "round_", type=int, help="One round (default: the current round).")
@click.option("--overall", is_flag=True, help="All rounds combined.")
@json_option
def leaderboard(round_: int | None, overall: bool, as_json: bool) -> None:
    """The leaderboard as a table."""
    if overall and round_ is not None:
        raise click.UsageError("Give --round N or --overall, not both.")
    client = api()
    if overall:
        board = client.json("GET", "/leaderboard/overall")
        title = f"Overall ({board.get('aggregation')} of rounds {', '.join(map(str, board.get('rounds', [])))})"
    else:
        board = client.json("GET", "/leaderboard", params={"round": round_} if round_ is not None else None)
        title = f"Round {board['round']}"
    if as_json:
        emit(board)
        return
    rows = board.get("rows", [])
    columns = [
        c for c in ("rank", "team_name", "utility_score", "attack_performance", "score") if rows and c in rows[0]
    ]
    table = make_table(*[c.replace("_", " ") for c in columns] or ["rank", "team"], title=title)
    for row in rows:
        table.add_row(*[_num(row.get(c), 3) for c in columns])
    out.print(table)
    if not rows:
        out.print("No team on this leaderboard yet.")


@cli.command()
@click.argument("submission_id", type=int, required=False)
@click.option("--page", default=1, show_default=True, help="Page of the list (newest first).")
@json_option
def submissions(submission_id: int | None, page: int, as_json: bool) -> None:
    """Your team's uploads, newest first; with an ID, that upload's checks and results."""
    client = api()
    if submission_id is not None:
        data = client.json("GET", f"/submissions/{submission_id}")
        emit(data) if as_json else show_submission(data)
        return
    data = client.json("GET", "/submissions", params={"page": page})
    if as_json:
        emit(data)
        return
    table = make_table(
        "id", "kind", "round", "status", "file", "uploaded", title=f"Page {data['page']} of {data['pages']}"
    )
    for s in data["items"]:
        table.add_row(
            str(s["id"]), s["kind"], str(s["round"]), s["status"], s["original_filename"] or "", s["created_at"]
        )
    out.print(table)
    if not data["items"]:
        out.print("No upload yet.")


@cli.group()
def validate() -> None:
    """Run the platform's own checks on a file, offline, before uploading it."""


SETTINGS_HELP = "Read the competition settings from the server (you must be logged in); default: the package's."


def _server_settings() -> dict:
    """GET /competition: the settings the worker checks uploads against."""
    return api().json("GET", "/competition")


@validate.command("defence")
@click.argument("file", type=UPLOAD_FILE)
@click.option("--settings", "online", is_flag=True, help=SETTINGS_HELP)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Undefended traces to measure overheads against: a zip in the defence format, or per-cell medians as "
    "JSON. Default: the bundled sample, the platform's default reference.",
)
@click.option("--no-reference", is_flag=True, help="Skip plausibility and overheads (a worker without a reference).")
@json_option
def validate_defence(file: Path, online: bool, reference: Path | None, no_reference: bool, as_json: bool) -> None:
    """Run the worker's checks, plausibility, overheads and utility on a defence file, offline."""
    from srs_client import validate as v

    if reference and no_reference:
        raise click.UsageError("Give --reference FILE or --no-reference, not both.")
    settings = v.defence_settings(_server_settings().get("defence_settings") if online else None)
    medians, described = (
        (None, "no reference")
        if no_reference
        else (v.load_reference(reference, settings) if reference else v.bundled_reference())
    )
    if as_json:
        report = v.validate_defence(file, settings, medians)
    else:
        with err.status("Validating: reading", spinner="dots") as spinner:
            report = v.validate_defence(file, settings, medians, lambda stage: spinner.update(f"Validating: {stage}"))
    report["reference"] = described
    if as_json:
        emit(report)
    else:
        _show_validation("defence", report)
        if report["passed"]:
            _show_overheads(report.get("overheads"), described)
        _verdict(report["passed"])
    if not report["passed"]:
        sys.exit(1)


def _show_validation(kind: str, report: dict) -> None:
    verdict = (
        click.style("passed", fg="green", bold=True) if report["passed"] else click.style("failed", fg="red", bold=True)
    )
    click.echo(f"Validation of the {kind} file: {verdict}")
    if report.get("message"):
        click.echo(_wrapped(report["message"]))
    show_results({k: report.get(k) for k in ("checks", "utility", "utility_score")})


def _verdict(passed: bool) -> None:
    click.echo("Ready to upload." if passed else "Fix the failed checks before uploading.")


def _show_overheads(overheads: dict | None, described: str) -> None:
    if overheads is None:
        out.print(f"No overheads measured ({described}).")
        return
    table = make_table("overhead", "median over cells", title=f"Overheads against the {described}")
    for key, label in (
        ("bandwidth_in", "bandwidth in"),
        ("bandwidth_out", "bandwidth out"),
        ("bandwidth_total", "bandwidth total"),
        ("time", "time"),
    ):
        value = overheads.get(key)
        table.add_row(label, "-" if value is None else f"{value:+.1f} %")
    out.print(table)


@validate.command("attack")
@click.argument("file", type=UPLOAD_FILE)
@click.option(
    "--sets",
    "sets_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder holding the team_ID_test.csv.zip files (from `srs attack download`); their capture ids are kept "
    "in its .srs-sets.json.",
)
@click.option("--settings", "online", is_flag=True, help=SETTINGS_HELP)
@click.option("--nb-classes", type=int, help="Number of classes (grid cells); default 100, or the server's.")
@click.option("--max-mb", type=int, help="Largest decompressed CSV accepted, in MB; default 640, or the server's.")
@json_option
def validate_attack(
    file: Path, sets_dir: Path, online: bool, nb_classes: int | None, max_mb: int | None, as_json: bool
) -> None:
    """Check an attack file against the test sets in --sets: columns, types, targets, capture ids, probabilities."""
    from srs_client.validate import validate_attack as run

    server = _server_settings().get("defence_settings", {}) if online else {}
    nb_classes = nb_classes or server.get("nb_classes", 100)
    max_bytes = max_mb * 1024 * 1024 if max_mb else server.get("max_uncompressed_bytes", 640 * 1024 * 1024)
    report = run(file, sets_dir, nb_classes, max_bytes)
    if as_json:
        emit(report)
    else:
        _show_validation("attack", report)
        _verdict(report["passed"])
    if not report["passed"]:
        sys.exit(1)


def main() -> None:
    """The `srs` command: runs it, flushes its output and ends the process at once.

    Ending with os._exit skips the interpreter's teardown (freeing every module, numpy's and pyarrow's included),
    a tenth of a validation's time, and nothing is lost by it: every file srs writes is closed when its command
    returns, and srs registers no exit handler. The exit code is click's (sys.exit's rules for other values).
    """
    try:
        cli(prog_name="srs")
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`srs ... | head`): nothing more to tell it
            pass
    os._exit(code)
