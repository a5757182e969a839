"""Shared steps of the integration tests: log in, upload, wait for a submission to finish."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.integration.conftest import wait_for


def logged_in(app, username: str, password: str = "secret-pw"):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, f"login of {username} failed"
    return client


def upload(client, url: str, path: Path | None = None, data: bytes | None = None, name: str = "upload.zip"):
    body = data if data is not None else Path(path).read_bytes()
    return client.post(url, data={"file": (io.BytesIO(body), name)}, content_type="multipart/form-data")


def wait_finished(client, submission_id: int, timeout: float = 180) -> dict:
    def finished():
        data = client.get(f"/api/v1/submissions/{submission_id}").get_json()
        return data if data["status"] in ("succeeded", "failed") else None

    return wait_for(finished, timeout=timeout, interval=0.3, what=f"submission {submission_id}")


def zip_csv(csv_text: str, member: str = "defence.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, csv_text)
    return buffer.getvalue()


def mail_text(message) -> str:
    """The text/plain body of a received message."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("the mail has no text part")


def uniform_attack_csv(team_id: int, capture_ids, nb_classes: int = 100) -> bytes:
    """A zipped attack CSV giving every class the same probability for each capture."""
    return uniform_attack_rows({team_id: capture_ids}, nb_classes)


def uniform_attack_rows(rows: dict, nb_classes: int = 100) -> bytes:
    """A zipped attack CSV on several targets (team id → capture ids), every class equally probable."""
    import pandas as pd

    teams = [team for team, ids in rows.items() for _ in ids]
    columns = {"team_id": teams, "capture_id": [capture for ids in rows.values() for capture in ids]}
    columns.update({f"proba_class_{c}": [1 / nb_classes] * len(teams) for c in range(1, nb_classes + 1)})
    return zip_csv(pd.DataFrame(columns).to_csv(index=False))
