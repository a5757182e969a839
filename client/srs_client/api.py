"""The platform's JSON API (/api/v1) over requests: errors become ApiError with the server's message."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder, MultipartEncoderMonitor

from srs_client.errors import ApiError, ClientError

__all__ = ["Api", "ApiError", "ClientError", "unpack_sets"]

TIMEOUT = 30  # seconds to connect and between bytes; uploads stream, so big files are fine
CHUNK = 1 << 16


class Api:
    """One server, one token."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "srs-client"

    def request(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> requests.Response:
        """Send a call under /api/v1; raise ApiError on an error answer and ClientError without a network."""
        url = f"{self.url}/api/v1{path}"
        headers = kwargs.pop("headers", {})
        if self.token and "auth" not in kwargs:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(method, url, headers=headers, timeout=TIMEOUT, stream=stream, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            raise ClientError(
                f"Could not reach the SRS server at {self.url}: check the address (srs login --url URL or SRS_URL) "
                "and your network connection."
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise ClientError(f"The SRS server at {self.url} did not answer in {TIMEOUT} seconds: try again.") from exc
        except requests.exceptions.RequestException as exc:
            raise ClientError(f"The request to {self.url} failed: {exc}") from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ClientError(f"The server at {self.url} did not answer with JSON: is it an SRS server?") from exc

    def login(self, username: str, password: str) -> dict:
        return self.json("POST", "/tokens", auth=(username, password))

    def upload(self, path: Path, endpoint: str, progress: Callable[[int, int], None] | None = None) -> dict:
        """Stream a multipart upload of `path` as field `file`; progress(sent, total) while it goes."""
        with Path(path).open("rb") as handle:
            encoder = MultipartEncoder(fields={"file": (Path(path).name, handle, "application/zip")})
            total = encoder.len

            def report(monitor: MultipartEncoderMonitor) -> None:
                if progress:
                    progress(min(monitor.bytes_read, total), total)

            body = MultipartEncoderMonitor(encoder, report)
            try:
                return self.json("POST", endpoint, data=body, headers={"Content-Type": body.content_type})
            except ClientError as exc:
                if isinstance(exc, ApiError) or not isinstance(exc.__cause__, requests.exceptions.ConnectionError):
                    raise
                # A server refusing a too large body answers 413 and closes before the upload ends.
                size = Path(path).stat().st_size / (1024 * 1024)
                raise ClientError(
                    f"The server at {self.url} closed the connection during the upload of {Path(path).name} "
                    f"({size:.1f} MB): the file may be larger than it accepts; compress or trim it, or check "
                    "your connection."
                ) from exc

    def download(self, path: str, dest: Path, progress: Callable[[int, int | None], None] | None = None) -> Path:
        """Stream a download to dest; progress(received, total or None)."""
        response = self.request("GET", path, stream=True)
        total = int(response.headers["Content-Length"]) if response.headers.get("Content-Length") else None
        received = 0
        with dest.open("wb") as out:
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
                received += len(chunk)
                if progress:
                    progress(received, total)
        return dest


def _api_error(response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        return ApiError(str(body["message"]), response.status_code, body.get("error"))
    return ApiError(f"The server answered {response.status_code} {response.reason}.", response.status_code, None)


def unpack_sets(archive: Path, dest: Path) -> list[str]:
    """Extract the per-target zips of an attack download into dest; refuses members that leave dest."""
    names = []
    try:
        with zipfile.ZipFile(archive) as outer:
            for info in outer.infolist():
                name = info.filename
                if info.is_dir():
                    continue
                if Path(name).name != name or name.startswith("."):
                    raise ClientError(f"The download holds an unexpected member {name!r}; nothing was unpacked.")
                names.append(name)
            for name in names:
                (dest / name).write_bytes(outer.read(name))
    except zipfile.BadZipFile as exc:
        raise ClientError("The server's download is not a zip file: try again.") from exc
    return names
