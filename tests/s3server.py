"""moto's standalone S3 server in a subprocess on a free port, for tests of the S3 storage backend."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def s3_server(log_folder: Path) -> Iterator[dict[str, str]]:
    """Start `python -m moto.server`; yield the AWS_* environment that points boto3 at it; stop it."""
    port = free_port()
    log = (log_folder / f"moto-{port}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "NO_PROXY": "127.0.0.1,localhost"}
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_client_args())
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_buckets()
                break
            except Exception as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = (log_folder / f"moto-{port}.log").read_text()
                    raise AssertionError("moto.server did not start: " + output) from exc
                time.sleep(0.2)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _client_args() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def make_bucket(env: dict[str, str]) -> str:
    """A new empty bucket on the server; returns its name."""
    import boto3

    name = f"srs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_client_args()).create_bucket(Bucket=name)
    return name


def object_keys(env: dict[str, str], bucket: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_client_args())
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def apply_env(monkeypatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
