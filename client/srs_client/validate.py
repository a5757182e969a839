"""Offline checks of an attack file with the server's own evaluation code (shipped as srs_client.evaluation)."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

from srs_client.api import ClientError

TEST_SET = re.compile(r"^team_(\d+)_test\.csv\.zip$")


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


def _capture_ids(path: Path) -> list[int]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with zipfile.ZipFile(path) as archive:
            (member,) = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            data = archive.read(member)
        table = pacsv.read_csv(
            io.BytesIO(data),
            convert_options=pacsv.ConvertOptions(
                include_columns=["capture_id"], column_types={"capture_id": pa.int64()}
            ),
        )
    except (OSError, ValueError, zipfile.BadZipFile, pa.ArrowException) as exc:
        raise ClientError(f"{path} is not a test set as downloaded ({exc}): download it again.") from exc
    return sorted(set(table.column("capture_id").to_pylist()))


def validate_attack(file: Path, sets_dir: Path, nb_classes: int, max_uncompressed_bytes: int) -> tuple[bool, list]:
    """Run the worker's attack checks on file against the captures of the test sets in sets_dir.

    The worker checks against the hidden verification sets, which hold the same capture ids as the public test
    sets; the labels are unknown here, so the scores computed on the way are meaningless and dropped.
    Returns (passed, checks as dicts).
    """
    attack = evaluation_module("attack")
    errors = evaluation_module("errors")
    targets = test_sets(sets_dir)
    with tempfile.TemporaryDirectory(prefix="srs-validate-") as tmp:
        stand_ins = {}
        for team_id, path in targets.items():
            ids = _capture_ids(path)
            stand_in = Path(tmp) / f"team_{team_id}_verification.csv.zip"
            with zipfile.ZipFile(stand_in, "w", zipfile.ZIP_DEFLATED) as out:
                out.writestr("verification.csv", "capture_id,cell_id\n" + "".join(f"{i},1\n" for i in ids))
            stand_ins[team_id] = stand_in
        try:
            result = attack.score_attack(
                Path(file), stand_ins, nb_classes=nb_classes, max_uncompressed_bytes=max_uncompressed_bytes
            )
        except errors.ValidationError as exc:
            checks = [c.to_dict() for c in exc.checks] or [
                {"name": "file", "passed": False, "message": exc.message, "count": 1, "examples": []}
            ]
            return False, checks
    return True, [c.to_dict() for c in result.checks]
