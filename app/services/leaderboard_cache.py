"""The leaderboard cache in Redis, shared by every web process; cleared when a result is recorded."""

from __future__ import annotations

import logging
import time

import redis
from flask import current_app

log = logging.getLogger(__name__)


def _client() -> redis.Redis:
    client = current_app.extensions.get("srs_redis")
    if client is None:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
        current_app.extensions["srs_redis"] = client
    return client


def _prefix() -> str:
    return current_app.config["REDIS_KEY_PREFIX"] + "leaderboard:"


def get(key: str) -> bytes | None:
    try:
        return _client().get(_prefix() + key)
    except redis.exceptions.RedisError as exc:
        log.warning("leaderboard cache unavailable: %s", exc)
        return None


def put(key: str, value: bytes) -> None:
    if current_app.config["LEADERBOARD_CACHE_TIME"] <= 0:
        return
    try:
        _client().set(_prefix() + key, value, px=int(current_app.config["LEADERBOARD_CACHE_TIME"] * 1000))
    except redis.exceptions.RedisError as exc:
        log.warning("leaderboard cache unavailable: %s", exc)


def get_or_compute(key: str, compute, wait: float = 2.0) -> bytes:
    """The cached value of key, or compute() it once: when it expires under load, one process recomputes
    (it holds a short Redis lock) while the others wait for its result, instead of all computing at once."""
    value = get(key)
    if value is not None:
        return value
    if current_app.config["LEADERBOARD_CACHE_TIME"] <= 0:
        return compute()
    lock = _prefix() + "lock:" + key
    try:
        owner = _client().set(lock, b"1", nx=True, px=int(wait * 1000))
    except redis.exceptions.RedisError:
        owner = True  # no Redis: compute without coordination
    if not owner:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(0.02)
            value = get(key)
            if value is not None:
                return value
    value = compute()
    put(key, value)
    if owner:
        try:
            _client().delete(lock)
        except redis.exceptions.RedisError:
            pass
    return value


def clear_leaderboard() -> None:
    """Forget every cached leaderboard (called as soon as a defence or attack result is recorded)."""
    try:
        client = _client()
        keys = list(client.scan_iter(_prefix() + "*"))
        if keys:
            client.delete(*keys)
    except redis.exceptions.RedisError as exc:
        log.warning("could not clear the leaderboard cache: %s", exc)
