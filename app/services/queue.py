"""Sending tasks to the workers."""

from __future__ import annotations

from flask import current_app


def send_task(name: str, args: list) -> None:
    """Send a task through this Flask app's own Celery app (never a process-wide default).

    Raises the broker's error when it does not answer after a short retry; callers keep their record and
    let the sweeper try again.
    """
    current_app.extensions["celery"].send_task(
        name, args=args, retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2}
    )
