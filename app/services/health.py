"""Health of the parts a web process needs: database, Redis, storage. Details go to the log, not the answer."""

from __future__ import annotations

import logging

import redis
import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.storage import get_storage

log = logging.getLogger(__name__)


def _database() -> None:
    db.session.execute(sa.text("SELECT 1"))
    db.session.rollback()


def _redis() -> None:
    urls = {current_app.config["REDIS_URL"], current_app.config["CELERY_BROKER_URL"]}
    for url in sorted(u for u in urls if u.startswith(("redis://", "rediss://", "unix://"))):
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()


def _storage() -> None:
    get_storage().check()


CHECKS = {"database": _database, "redis": _redis, "storage": _storage}


def storage_low() -> int | None:
    """Free megabytes of the upload storage when below STORAGE_MIN_FREE_MB (uploads will soon fail), else None."""
    try:
        free = get_storage().free_bytes()
    except OSError as exc:
        log.warning("free space of the storage unknown: %s", exc)
        return None
    if free is None:
        return None
    free_mb = free // (1024 * 1024)
    return free_mb if free_mb < current_app.config["STORAGE_MIN_FREE_MB"] else None


def check_health() -> dict[str, bool]:
    """Whether each part answers, by name; a failure is logged with its reason."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = True
        except Exception as exc:  # any failure of a part means unhealthy, whatever its kind
            log.warning("health check of %s failed: %s", name, exc)
            if name == "database":
                db.session.rollback()
            results[name] = False
    return results
