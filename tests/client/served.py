"""The test app served over HTTP on a free port, and `srs` run in-process against it, for the client tests."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from werkzeug.serving import make_server

from tests.conftest import ROOT

# The client's source first on the path: the tests run the code in client/, not an older installed copy.
sys.path.insert(0, str(ROOT / "client"))
from srs_client import cli as srs_cli  # noqa: E402


@contextmanager
def served(app) -> Iterator[str]:
    """The app's URL while a threaded server answers on it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@dataclass
class Srs:
    """Runs `srs ARGS` in-process with its own config folder and, when given, a server and token."""

    home: Path
    url: str = "http://127.0.0.1:9"  # nothing listens there
    token: str | None = None

    def __call__(self, *args: str) -> Result:
        env = {"XDG_CONFIG_HOME": str(self.home), "SRS_URL": self.url, "SRS_TOKEN": self.token}
        result = CliRunner(env=env).invoke(srs_cli.cli, list(args), prog_name="srs")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"srs {' '.join(args)} raised instead of printing a message") from result.exception
        assert "Traceback" not in result.output
        return result
