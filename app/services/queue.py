"""Sending tasks to the workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import current_app

log = logging.getLogger(__name__)


def send_task(name: str, args: list) -> None:
    """Send a task through this Flask app's own Celery app (never a process-wide default).

    Raises the broker's error when it does not answer after a short retry; callers keep their record and
    let the sweeper try again.
    """
    current_app.extensions["celery"].send_task(
        name, args=args, retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2}
    )


def send_task_or_run_in_background(name: str, args: list, body: Callable[..., None]) -> None:
    """Hand task `name` to a worker; when the broker is down, run its body in a background thread of this
    process instead. Either way the request neither fails nor waits for the task, so it takes the same time
    whatever the task will find (requests that must not tell whether an account exists rely on this)."""
    try:
        send_task(name, args)
    except Exception as exc:
        log.warning("could not enqueue %s, running it in the background: %s", name, exc)
        app = current_app._get_current_object()

        def run() -> None:
            with app.app_context():
                body(*args)

        threading.Thread(target=run, name=name, daemon=True).start()
