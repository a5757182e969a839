"""Deployment settings, every one read from the environment (python-dotenv loads .env and .flaskenv)."""

import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".flaskenv")
load_dotenv(BASE_DIR / ".env")

DEFAULT_SECRET_KEY = "you-will-never-guess"


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def _path(name: str, default: str) -> str:
    """A folder setting: absolute paths are kept, relative ones are taken from the project folder."""
    value = Path(os.environ.get(name) or default)
    return str(value if value.is_absolute() else BASE_DIR / value)


def _columns(name: str, default: str) -> list[str]:
    return [c.strip() for c in (os.environ.get(name) or default).split(",") if c.strip()]


class Config:
    """Settings with defaults that work on a laptop."""

    SECRET_KEY = os.environ.get("SECRET_KEY") or DEFAULT_SECRET_KEY
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'app.db'}"
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "redis://localhost:6379/0"
    RESULT_BACKEND = os.environ.get("RESULT_BACKEND") or "redis://localhost:6379/0"
    # Redis for the rate limiter and the leaderboard cache; the broker's Redis unless told otherwise.
    REDIS_URL = os.environ.get("REDIS_URL") or CELERY_BROKER_URL
    # Prefix of this deployment's Redis keys and name of its task queue: several deployments (or test runs)
    # can share one Redis without reading each other's caches or taking each other's tasks.
    REDIS_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX") or "srs:"
    CELERY_TASK_QUEUE = os.environ.get("CELERY_TASK_QUEUE") or "celery"

    UPLOAD_FOLDER = _path("UPLOAD_FOLDER", "uploads")
    TEMPORARY_UPLOAD_FOLDER = _path("TEMPORARY_UPLOAD_FOLDER", "tmp_uploads")
    LOG_FOLDER = _path("LOG_FOLDER", "logs")

    MAIL_SERVER = os.environ.get("MAIL_SERVER")
    MAIL_PORT = _int("MAIL_PORT", 25)
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
    MAIL_USE_SSL = _bool("MAIL_USE_SSL", False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    ADMIN = os.environ.get("ADMIN")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER") or "srs@localhost"
    MAIL_TEST_RECEIVER_FORMAT = os.environ.get("MAIL_TEST_RECEIVER_FORMAT")
    # The site's public address, for links in e-mails sent by workers (which have no request to read it from).
    SITE_URL = os.environ.get("SITE_URL") or (
        f"http://{os.environ.get('FLASK_RUN_HOST') or '127.0.0.1'}:{os.environ.get('FLASK_RUN_PORT') or '5000'}"
    )

    MATCHES_PER_PAGE = _int("MATCHES_PER_PAGE", 120)
    MATCHES_PER_TEAM = _int("MATCHES_PER_TEAM", 3)
    NB_CLASSES = _int("NB_CLASSES", 100)
    NB_TRACES_TO_CLASSIFY = _int("NB_TRACES_TO_CLASSIFY", 300)
    MAX_CONTENT_LENGTH_MB = _int("MAX_CONTENT_LENGTH", 32)
    MAX_CONTENT_LENGTH = MAX_CONTENT_LENGTH_MB * 1024 * 1024
    # Zip bombs reach 1000:1; a trace CSV compresses about 5:1, so 20x the upload limit is generous.
    MAX_UNCOMPRESSED_BYTES = _int("MAX_UNCOMPRESSED_MB", 20 * MAX_CONTENT_LENGTH_MB) * 1024 * 1024
    MEAN_NB_REP_PER_CLASS = _int("MEAN_NB_REP_PER_CLASS", 32)
    DEVIATION_NB_REP_PER_CLASS = _int("DEVIATION_NB_REP_PER_CLASS", 7)
    ROWS_PER_CAPTURE = _int("ROWS_PER_CAPTURE", 5)
    LEADERBOARD_CACHE_TIME = _float("LEADERBOARD_CACHE_TIME", 5)
    LEADERBOARD_AGGREGATION = os.environ.get("LEADERBOARD_AGGREGATION") or "sum"
    DEFENCE_COLUMNS = _columns("DEFENCE_COLUMNS", "cell_id,rep,direction_size,timestamp")
    ATTACK_COLUMNS = _columns("ATTACK_COLUMNS", "team_id,capture_id")

    # A submission queued this long without a worker picking it up is enqueued again;
    # one running this long is failed with a reason (the task's hard time limit is below it).
    SUBMISSION_STALE_QUEUED_SECONDS = _int("SUBMISSION_STALE_QUEUED_SECONDS", 120)
    SUBMISSION_STALE_RUNNING_SECONDS = _int("SUBMISSION_STALE_RUNNING_SECONDS", 1800)
    TASK_TIME_LIMIT = _int("TASK_TIME_LIMIT", 1200)
    API_TOKEN_HOURS = _int("API_TOKEN_HOURS", 24)
    # The beat checks the timeline this often; an action applied more than SCHEDULE_LATE_SECONDS after its
    # time (the platform was down) is marked "applied late" in the audit log.
    SCHEDULE_POLL_SECONDS = _float("SCHEDULE_POLL_SECONDS", 15)
    SCHEDULE_LATE_SECONDS = _int("SCHEDULE_LATE_SECONDS", 60)
    AUDIT_PER_PAGE = _int("AUDIT_PER_PAGE", 50)
    ANNOUNCEMENT_MAIL_BATCH = _int("ANNOUNCEMENT_MAIL_BATCH", 50)

    LOGIN_LIMIT_PER_ACCOUNT = os.environ.get("LOGIN_LIMIT_PER_ACCOUNT") or "10 per 5 minutes"
    LOGIN_LIMIT_PER_ADDRESS = os.environ.get("LOGIN_LIMIT_PER_ADDRESS") or "300 per 5 minutes"
    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or REDIS_URL
    RATELIMIT_KEY_PREFIX = REDIS_KEY_PREFIX + "limits"
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session: long uploads must not expire it

    CELERY_ALWAYS_EAGER = False


class TestingConfig(Config):
    """Tests: CSRF off (tests that check it turn it on), rate limits in memory, no mail server."""

    TESTING = True
    WTF_CSRF_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    MAIL_SERVER = None
    SECRET_KEY = "testing-secret-key"
    LEADERBOARD_CACHE_TIME = 0  # each test has its own database; tests of the cache turn it on


class ProductionConfig(Config):
    """Production refuses the default SECRET_KEY (checked in create_app) and sends secure cookies."""

    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE


CONFIGS = {"development": Config, "testing": TestingConfig, "production": ProductionConfig}
