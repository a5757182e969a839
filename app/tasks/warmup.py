"""A worker's start-up does what the first task would otherwise pay for, so the first upload after a (re)start is
as fast as the next ones: imports, mapper set-up, mail templates and the allocator choice in the parent, before
it forks its pool processes (which share them); Arrow's threads and a database connection in each pool process
(neither survives a fork). Only an optimisation: a failure is logged and the worker starts all the same."""

import logging

from celery import signals
from flask import Flask

from app.evaluation.defence.warmup import warm_up
from app.extensions import db

log = logging.getLogger(__name__)


def _flask_app(sender) -> Flask | None:
    return getattr(getattr(sender, "app", None), "flask_app", None)


@signals.worker_init.connect
def prepare_parent(sender=None, **_) -> None:
    """In the worker's parent process: import and configure what the tasks use on their first call."""
    try:
        _prepare_parent(_flask_app(sender))
    except Exception:
        log.exception("the worker's warm-up failed (the first tasks will be slower)")


def _prepare_parent(app: Flask | None) -> None:
    import concurrent.futures  # noqa: F401  (the sets' writer pool)

    import pyarrow as pa
    import sqlalchemy.orm

    # Arrow's own allocator (mimalloc) keeps what an evaluation freed for later: about 90 MB more at the peak
    # of a 6 M-row upload, still held between tasks. The C library's hands large blocks back when freed.
    pa.set_memory_pool(pa.system_memory_pool())

    from app.evaluation import zip_writer

    zip_writer._compressor()  # imports the deflate library
    sqlalchemy.orm.configure_mappers()
    if app is not None:
        with app.app_context():  # the result mails' templates, compiled once for every pool process
            for kind in ("defence", "attack"):
                for extension in ("txt", "html"):
                    app.jinja_env.get_template(f"email/{kind}_result.{extension}")


@signals.worker_process_init.connect
def prepare_pool_process(**_) -> None:
    """In each pool process, after the fork: Arrow's threads and CSV code, and one pooled database connection."""
    from celery import current_app as celery_app

    try:
        warm_up()
        app = getattr(celery_app, "flask_app", None)
        if app is not None:
            with app.app_context(), db.engine.connect():
                pass
    except Exception:
        log.exception("a pool process's warm-up failed (its first task will be slower)")
