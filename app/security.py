"""The session signing key, security headers on every response, and the trusted reverse proxies."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from config import PUBLIC_SECRET_KEYS

# Pages load scripts, styles and images from this site only and no inline script or style: an injected
# <script> or on* attribute does not run. Inline style attributes and <style> blocks are refused too (no
# 'unsafe-inline'): CSS injection can leak data through selectors, and the pages need none (the leaderboard's
# SVG uses presentation attributes, which CSP does not restrict).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
}


def keep_private(response):
    """For a page whose URL carries a secret token (a reset or confirmation link): keep the URL out of Referer
    headers and the page out of caches."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Headers on every response; ProxyFix when TRUSTED_PROXIES says proxies set X-Forwarded-* headers."""

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    proxies = app.config.get("TRUSTED_PROXIES", 0)
    if proxies:
        # Only as many hops as there are proxies: a client's own X-Forwarded-For entries are not believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]


def configure_secret_key(app: Flask, production: bool) -> None:
    """Refuse public keys; outside production, take the key from SECRET_KEY_FILE, created on first launch.

    Reading (and once writing) a file in create_app is the exception to its no-I/O rule: it is what lets
    ./run-srs.sh work with zero setup without a forgeable session key.
    """
    if app.testing:
        return
    key = app.config.get("SECRET_KEY")
    if key in PUBLIC_SECRET_KEYS:
        raise RuntimeError(
            "SECRET_KEY is set to a public example value, so anyone could forge a login session. "
            "Remove SECRET_KEY from the environment and .env to let the platform keep a random key in "
            f"{app.config['SECRET_KEY_FILE']}, or set it to a long random string: "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'."
        )
    if key:
        return
    if production:
        raise RuntimeError(
            "Set SECRET_KEY in production (every web process and host must share it): "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'."
        )
    app.config["SECRET_KEY"] = load_or_create_key(Path(app.config["SECRET_KEY_FILE"]))


def load_or_create_key(path: Path) -> str:
    """The key kept in path; a new random one (file mode 600) when there is none. Safe between processes."""
    if path.exists():
        key = path.read_text().strip()
        if not key:
            raise RuntimeError(f"The secret key file {path} is empty: delete it and start again to get a new key.")
        return key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    try:
        os.link(scratch, path)  # atomic, and fails if another process (web, worker, flask db) was first
    except FileExistsError:
        return load_or_create_key(path)
    finally:
        scratch.unlink()
    return key
