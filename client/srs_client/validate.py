"""Offline checks of defence and attack files with the server's own evaluation code (shipped as
srs_client.evaluation): the same functions the worker calls, so the same checks and the same messages.

Modules only the defence needs are imported inside its functions: `srs validate attack` starts without them."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from srs_client.errors import ClientError

TEST_SET = re.compile(r"^team_(\d+)_test\.csv\.zip$")
# The capture ids of the test sets in a folder, by file name and content (the size and CRC-32 of the CSV inside):
# written by `srs attack download` (and by the first validation against sets from elsewhere), so that validations
# skip unzipping them.
INDEX = ".srs-sets.json"


def evaluation_module(name: str) -> ModuleType:
    """srs_client.evaluation.NAME from the wheel; app.evaluation.NAME when run from a repository checkout."""
    import importlib

    try:
        return importlib.import_module(f"srs_client.evaluation.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("srs_client.evaluation", f"srs_client.evaluation.{name}"):
            raise ClientError(
                f"The evaluation package shipped with srs cannot be imported ({exc}): "
                "reinstall the client from an up-to-date checkout (pip install ./client)."
            ) from exc
    try:
        return importlib.import_module(f"app.evaluation.{name}")
    except ModuleNotFoundError as exc:
        raise ClientError("This srs has no evaluation package: install it with `pip install ./client`.") from exc


def test_sets(sets_dir: Path) -> dict[int, Path]:
    """The test sets found in sets_dir (as unpacked by `srs attack download`), by target team id."""
    if not sets_dir.is_dir():
        raise ClientError(f"{sets_dir} is not a folder: give the folder you downloaded the sets into.")
    found = {int(m.group(1)): p for p in sets_dir.iterdir() if (m := TEST_SET.match(p.name))}
    if not found:
        raise ClientError(
            f"{sets_dir} holds no team_ID_test.csv.zip: download your targets' sets with `srs attack download`."
        )
    return found


def _bad_set(path: Path, exc: Exception) -> ClientError:
    return ClientError(f"{path} is not a test set as downloaded ({exc}): download it again.")


def _parse_capture_ids(path: Path, data: bytes) -> list[int]:
    """The sorted capture ids of a test set's CSV."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                include_columns=["capture_id"], column_types={"capture_id": pa.int64()}
            ),
        )
    except (ValueError, pa.ArrowException) as exc:
        raise _bad_set(path, exc) from exc
    return sorted(set(table.column("capture_id").to_pylist()))


def _index_entry(path: Path, entry: Any) -> dict[str, Any]:
    """A test set's index entry: `entry` itself while it describes the file as it is (its CSV member's name, size
    and CRC-32, as the zip's directory records them), else a new one read from the file. The zip is opened once."""
    archive_module = evaluation_module("archive")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive_module.single_csv(archive.infolist(), "download it again.")
            members = [[info.filename, info.file_size, info.CRC]]
            if isinstance(entry, dict) and entry.get("members") == members:
                ids = entry.get("capture_ids")
                if isinstance(ids, list) and all(type(i) is int for i in ids):
                    return entry
            data = archive.read(info)
    except archive_module.ValidationError as exc:
        raise ClientError(f"{path} is not a test set as downloaded. {exc.message}") from exc
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _bad_set(path, exc) from exc
    return {"members": members, "capture_ids": _parse_capture_ids(path, data)}


def _read_index(sets_dir: Path) -> dict[str, Any]:
    """The folder's index entries by file name; none when it is missing or unreadable (it is only a cache)."""
    try:
        entries = json.loads((sets_dir / INDEX).read_text(encoding="utf-8"))["sets"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _write_index(sets_dir: Path, entries: dict[str, Any]) -> None:
    """Replace the index atomically; a folder the user cannot write to just goes without one."""
    tmp = sets_dir / f"{INDEX}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps({"version": 1, "sets": entries}), encoding="utf-8")
        os.replace(tmp, sets_dir / INDEX)
    except OSError:
        tmp.unlink(missing_ok=True)


def capture_ids(sets_dir: Path, targets: dict[int, Path]) -> dict[int, list[int]]:
    """Each target's test capture ids: from the index when it holds the file as it is, else read (and indexed)."""
    entries = _read_index(sets_dir)
    found, changed = {}, False
    for team_id, path in targets.items():
        entry = _index_entry(path, entries.get(path.name))
        if entry is not entries.get(path.name):
            entries[path.name], changed = entry, True
        found[team_id] = entry["capture_ids"]
    if changed:
        _write_index(sets_dir, {name: e for name, e in entries.items() if (sets_dir / name).is_file()})
    return found


def index_sets(sets_dir: Path) -> None:
    """Index the test sets in sets_dir (`srs attack download` calls it after unpacking)."""
    capture_ids(sets_dir, test_sets(sets_dir))


def validate_attack(file: Path, sets_dir: Path, nb_classes: int, max_uncompressed_bytes: int) -> dict[str, Any]:
    """Run the worker's attack checks (check_attack, what score_attack runs before scoring) on file, against the
    capture ids of the test sets in sets_dir: the verification sets hold the same ids, and their labels are not
    needed for the checks.

    Returns {"passed", "message" (the worker's error message, None when passed), "checks" (as dicts)}.
    """
    attack = evaluation_module("attack")
    errors = evaluation_module("errors")
    ids = capture_ids(sets_dir, test_sets(sets_dir))
    try:
        checks = attack.check_attack(
            Path(file), ids, nb_classes=nb_classes, max_uncompressed_bytes=max_uncompressed_bytes
        )
    except errors.ValidationError as exc:
        return {"passed": False, "message": exc.message, "checks": _failed_checks(exc)}
    return {"passed": True, "message": None, "checks": [c.to_dict() for c in checks]}


def _failed_checks(exc: Exception) -> list[dict]:
    """A ValidationError's checks, or one `file` check with its message when it has none (not a zip, ...)."""
    return [c.to_dict() for c in exc.checks] or [
        {"name": "file", "passed": False, "message": exc.message, "count": 1, "examples": []}
    ]


# ---------------------------------------------------------------------------------------------- defences

BUNDLED_REFERENCE = "reference.json"


def defence_settings(server: dict[str, Any] | None = None) -> Any:
    """DefenceSettings from the server's `defence_settings` (GET /api/v1/competition); the defaults without.

    Fields the server does not send keep the package's defaults; fields this client does not know are ignored.
    """
    import dataclasses

    defence = evaluation_module("defence")
    values = dict(server or {})
    known = {f.name for f in dataclasses.fields(defence.DefenceSettings)}
    values = {name: value for name, value in values.items() if name in known}
    if "columns" in values:
        values["columns"] = tuple(values["columns"])
    try:
        return defence.DefenceSettings(**values)
    except (TypeError, ValueError) as exc:
        raise ClientError(f"The server's defence settings are not usable by this srs ({exc}): upgrade srs.") from exc


def bundled_reference() -> tuple[Any, str]:
    """The per-cell medians shipped with srs (the sample's, as the platform computes them) and a description."""
    from importlib import resources

    document = json.loads(resources.files("srs_client").joinpath(BUNDLED_REFERENCE).read_text(encoding="utf-8"))
    medians = evaluation_module("defence").CellMedians.from_dict(document["medians"])
    return medians, f"bundled reference ({document['source']}, sha256 {document['sha256'][:12]})"


def load_reference(path: Path, settings: Any) -> tuple[Any, str]:
    """Per-cell medians from a JSON file (CellMedians.to_dict(), or a bundled-style document holding it under
    "medians") or computed from a zip of undefended traces in the defence upload format."""
    defence, errors = evaluation_module("defence"), evaluation_module("errors")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return defence.CellMedians.from_dict(data.get("medians", data)), f"reference medians from {path}"
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ClientError(
                f"{path} is not a reference: give per-cell medians as JSON or a zip of undefended traces ({exc})."
            ) from exc
    try:
        return defence.compute_reference(path, settings), f"reference computed from {path}"
    except errors.ValidationError as exc:
        raise ClientError(f"{path} cannot serve as the reference: {exc.message}") from exc


def validate_defence(
    file: Path,
    settings: Any,
    reference: Any | None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the worker's evaluation of a defence (evaluate_defence) on file; the sets are split, not written.

    Returns {"passed", "message" (the worker's error message, None when passed), "checks", and when passed
    "utility", "utility_score", "overheads" (None without a reference), "nb_rows", "nb_captures"}.
    """
    import tempfile

    defence, errors = evaluation_module("defence"), evaluation_module("errors")
    with tempfile.TemporaryDirectory(prefix="srs-validate-") as tmp:
        try:
            result = defence.evaluate_defence(
                Path(file),
                Path(tmp),
                team_id=0,
                settings=settings,
                seed=0,
                progress=progress,
                reference=reference,
                write_sets=False,
            )
        except errors.ValidationError as exc:
            return {"passed": False, "message": exc.message, "checks": _failed_checks(exc)}
        except ValueError as exc:  # plausibility and overheads need cells in common with the reference
            raise ClientError(f"The defence cannot be measured against this reference: {exc}.") from exc
    summary = result.to_dict()
    return {
        "passed": True,
        "message": None,
        **{key: summary[key] for key in ("checks", "utility", "utility_score", "overheads", "nb_rows", "nb_captures")},
    }
