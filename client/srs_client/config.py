"""Where the client keeps the server URL and the API token: the user's config folder, mode 600."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:5000"


def config_path() -> Path:
    """The credentials file in the user's config folder (XDG_CONFIG_HOME on Linux)."""
    import platformdirs  # here: offline commands (srs validate) start without it

    return Path(platformdirs.user_config_dir("srs", appauthor=False)) / "credentials.json"


@dataclass
class Credentials:
    url: str
    token: str | None


def load() -> Credentials:
    """The saved URL and token, each overridden by SRS_URL and SRS_TOKEN when set."""
    saved: dict = {}
    path = config_path()
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}  # a damaged file is as good as none: `srs login` writes a new one
    url = os.environ.get("SRS_URL") or saved.get("url") or DEFAULT_URL
    token = os.environ.get("SRS_TOKEN") or saved.get("token")
    return Credentials(url=url.rstrip("/"), token=token)


def save(url: str, token: str, expires_at: str | None) -> Path:
    """Write the credentials readable by the user only (created 600, never world-readable in between)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"url": url.rstrip("/"), "token": token, "expires_at": expires_at}, out)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC
    return path


def forget() -> bool:
    """Delete the credentials file; False when there was none."""
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    return True
