"""Application factory: config, extensions, Celery, storage, blueprints, error handlers, CLI. No I/O."""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler, SMTPHandler
from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask

from app import security
from app.extensions import csrf, db, limiter, login, mail, migrate
from app.routes.params import BoundedIntegerConverter
from app.storage import make_storage
from config import CONFIGS, Config, ProductionConfig


def create_app(config: type[Config] | str | None = None, **overrides: Any) -> Flask:
    """Build the app from a config class (or its name; default SRS_CONFIG or development) and overrides."""
    if config is None or isinstance(config, str):
        config = CONFIGS[config or os.environ.get("SRS_CONFIG", "development")]
    app = Flask(__name__)
    app.config.from_object(config)
    app.config.update(overrides)
    security.configure_secret_key(app, production=issubclass(config, ProductionConfig))

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    login.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    celery_init_app(app)
    app.extensions["storage"] = make_storage(app.config)

    app.url_map.converters["int"] = BoundedIntegerConverter  # before any route is added
    register_blueprints(app)
    from app import cli, errors, templating

    errors.init_app(app)
    security.init_app(app)
    cli.init_app(app)
    templating.init_app(app)
    configure_logging(app)
    return app


def register_blueprints(app: Flask) -> None:
    from app.routes import (
        admin,
        announcements,
        api,
        attack,
        audit_log,
        auth,
        dashboard,
        defence,
        health,
        leaderboard,
        main,
        password,
        submissions,
        teams,
        timeline,
    )

    for module in (
        auth,
        main,
        teams,
        admin,
        timeline,
        audit_log,
        announcements,
        defence,
        attack,
        submissions,
        leaderboard,
        dashboard,
        password,
        health,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    csrf.exempt(api.bp)  # token-authenticated, no cookies: CSRF cannot ride on it


def celery_init_app(app: Flask) -> Celery:
    """Flask's documented pattern: a Celery app whose tasks run inside this Flask app's context."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(
        {
            "broker_url": app.config["CELERY_BROKER_URL"],
            # Celery lets the CELERY_BROKER_URL variable override broker_url; these keep the app's config
            # (which reads that same variable by default) authoritative when an app is given another broker.
            "broker_read_url": app.config["CELERY_BROKER_URL"],
            "broker_write_url": app.config["CELERY_BROKER_URL"],
            "result_backend": app.config["RESULT_BACKEND"],
            "task_ignore_result": True,
            "task_default_queue": app.config["CELERY_TASK_QUEUE"],
            # The baseline attack takes seconds of both cores per defence: its own queue, served by its own
            # worker, keeps it from delaying validation and scoring feedback.
            "task_routes": {"srs.run_baseline": {"queue": app.config["CELERY_TASK_QUEUE"] + ".baseline"}},
            # A worker that dies mid-task hands the task back; the Submission row counts the attempts.
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_time_limit": app.config["TASK_TIME_LIMIT"],
            "task_soft_time_limit": app.config["TASK_TIME_LIMIT"] - 30,
            "broker_connection_retry_on_startup": True,
            # While Redis is down a web request that enqueues must answer within a few seconds (the row stays
            # queued for the sweeper): bound every connection attempt and the result backend's reconnection,
            # whose default (20 retries, 1 s apart) held an upload request for about 19 s.
            "broker_connection_timeout": app.config["BROKER_CONNECT_TIMEOUT"],
            "broker_transport_options": {
                "visibility_timeout": app.config["BROKER_VISIBILITY_TIMEOUT"],
                "socket_connect_timeout": app.config["BROKER_CONNECT_TIMEOUT"],
                "socket_keepalive": True,
                "health_check_interval": 10,
            },
            "result_backend_transport_options": {
                "socket_connect_timeout": app.config["BROKER_CONNECT_TIMEOUT"],
                "retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
            },
            "redis_socket_connect_timeout": app.config["BROKER_CONNECT_TIMEOUT"],
            "task_always_eager": app.config["CELERY_ALWAYS_EAGER"],
            "beat_schedule": {
                "sweep-submissions": {
                    "task": "srs.sweep_submissions",
                    "schedule": app.config["SWEEP_INTERVAL_SECONDS"],
                },
                "apply-schedule": {"task": "srs.apply_schedule", "schedule": app.config["SCHEDULE_POLL_SECONDS"]},
            },
            "include": [
                "app.tasks.control",
                "app.tasks.defence",
                "app.tasks.attack",
                "app.tasks.schedule",
                "app.tasks.baseline",
                "app.tasks.rounds",
                "app.tasks.warmup",
                "app.tasks.memory",
            ],
        }
    )
    celery_app.set_default()
    celery_app.flask_app = app  # what a worker's start-up warms (app/tasks/warmup.py)
    app.extensions["celery"] = celery_app
    return celery_app


def configure_logging(app: Flask) -> None:
    """Rotating file log in LOG_FOLDER, and errors mailed to ADMIN when a mail server is set."""
    if app.testing or app.config.get("LOG_TO_STDOUT"):
        return
    log_dir = Path(app.config["LOG_FOLDER"])
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(log_dir / "srs.log", maxBytes=1_000_000, backupCount=10)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s [in %(pathname)s:%(lineno)d]"))
    handler.setLevel(logging.INFO)
    app.logger.addHandler(handler)
    app.logger.setLevel(logging.INFO)
    if app.config["MAIL_SERVER"] and app.config["ADMIN"]:
        credentials = None
        if app.config["MAIL_USERNAME"]:
            credentials = (app.config["MAIL_USERNAME"], app.config["MAIL_PASSWORD"])
        mail_handler = SMTPHandler(
            mailhost=(app.config["MAIL_SERVER"], app.config["MAIL_PORT"]),
            fromaddr=app.config["MAIL_DEFAULT_SENDER"],
            toaddrs=[app.config["ADMIN"]],
            subject="Secret Race Strolling failure",
            credentials=credentials,
            secure=() if app.config["MAIL_USE_TLS"] else None,
        )
        mail_handler.setLevel(logging.ERROR)
        app.logger.addHandler(mail_handler)
