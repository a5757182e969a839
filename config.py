"""Deployment settings, every one read from the environment (python-dotenv loads .env and .flaskenv)."""

import os
from fractions import Fraction
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".flaskenv")
load_dotenv(BASE_DIR / ".env")

DEFAULT_SECRET_KEY = "you-will-never-guess"
# Keys anyone can read (the old built-in default, .env.example's placeholder): they must never sign sessions.
PUBLIC_SECRET_KEYS = frozenset({DEFAULT_SECRET_KEY, "change-me-to-a-long-random-string"})


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


def _fraction(name: str, default: float) -> float:
    """A share written as a decimal (0.25) or a fraction (1/3); its range is checked where it is used."""
    value = os.environ.get(name)
    return float(Fraction(value.strip())) if value not in (None, "") else default


def _path(name: str, default: str) -> str:
    """A folder setting: absolute paths are kept, relative ones are taken from the project folder."""
    value = Path(os.environ.get(name) or default)
    return str(value if value.is_absolute() else BASE_DIR / value)


def _columns(name: str, default: str) -> list[str]:
    return [c.strip() for c in (os.environ.get(name) or default).split(",") if c.strip()]


class Config:
    """Settings with defaults that work on a laptop."""

    # Unset: outside production, create_app reads SECRET_KEY_FILE, generating a random key there on first launch.
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SECRET_KEY_FILE = _path("SECRET_KEY_FILE", "instance/secret_key")
    # How many reverse proxies in front set X-Forwarded-For/-Proto/-Host (0: none, the headers are ignored).
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)
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
    # Seconds one attempt to reach the broker may take: bounds how long an upload waits while Redis is down.
    BROKER_CONNECT_TIMEOUT = _float("BROKER_CONNECT_TIMEOUT", 0.5)

    UPLOAD_FOLDER = _path("UPLOAD_FOLDER", "uploads")
    TEMPORARY_UPLOAD_FOLDER = _path("TEMPORARY_UPLOAD_FOLDER", "tmp_uploads")
    LOG_FOLDER = _path("LOG_FOLDER", "logs")
    # s3://bucket/prefix keeps files in an S3-compatible store (several machines); empty: UPLOAD_FOLDER.
    STORAGE_URL = os.environ.get("STORAGE_URL") or ""

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
    # /healthz reports storage as degraded below this much free space in UPLOAD_FOLDER (local storage only).
    STORAGE_MIN_FREE_MB = _int("STORAGE_MIN_FREE_MB", 1024)
    PRODUCTION = False  # set by ProductionConfig: refuses demo accounts (flask populate-test-users)
    MAX_UPLOAD_MB = _int("MAX_UPLOAD_MB", 32)
    MAX_CONTENT_LENGTH = MAX_UPLOAD_MB * 1024 * 1024  # Flask's name, in bytes
    # Zip bombs reach 1000:1; a trace CSV compresses about 5:1, so 20x the upload limit is generous.
    MAX_UNCOMPRESSED_BYTES = _int("MAX_UNCOMPRESSED_MB", 20 * MAX_UPLOAD_MB) * 1024 * 1024
    MEAN_NB_REP_PER_CLASS = _int("MEAN_NB_REP_PER_CLASS", 32)
    DEVIATION_NB_REP_PER_CLASS = _int("DEVIATION_NB_REP_PER_CLASS", 7)
    ROWS_PER_CAPTURE = _int("ROWS_PER_CAPTURE", 5)
    # Real uploads hold 1-6 M rows; the cap bounds what a crafted file of short rows makes a worker hold.
    MAX_ROWS = _int("MAX_ROWS", 20_000_000)
    # Plausibility against undefended traffic (issue 8): a defence must still carry the pages it loads.
    PLAUSIBLE_MIN_BYTES_RATIO = _float("PLAUSIBLE_MIN_BYTES_RATIO", 0.5)
    PLAUSIBLE_MIN_TIME_RATIO = _float("PLAUSIBLE_MIN_TIME_RATIO", 0.5)
    MIN_PACKET_BYTES = _int("MIN_PACKET_BYTES", 20)
    # Undefended traffic in the defence format that overheads and plausibility are measured against; read once,
    # the first time a worker needs a reference (staff replace it with `flask set-reference` or /admin/reference).
    REFERENCE_TRACES = _path("REFERENCE_TRACES", "attack_defence_test_scripts/test_defence.csv.zip")
    # While a round is open, attack scores are shown on this share of each test set only (issue 13: no label
    # oracle); the full scores are published when the round closes.
    PUBLIC_SCORE_FRACTION = _fraction("PUBLIC_SCORE_FRACTION", 1 / 3)
    LEADERBOARD_CACHE_TIME = _float("LEADERBOARD_CACHE_TIME", 5)
    LEADERBOARD_AGGREGATION = os.environ.get("LEADERBOARD_AGGREGATION") or "sum"
    # `original`: utility × attack performance; `tradeoff`: defence score + attack score (rewards privacy).
    LEADERBOARD_SCORING = os.environ.get("LEADERBOARD_SCORING") or "original"
    DEFENCE_COLUMNS = _columns("DEFENCE_COLUMNS", "cell_id,rep,direction_size,timestamp")

    TASK_TIME_LIMIT = _int("TASK_TIME_LIMIT", 1200)
    # Redis hands an unacknowledged task back after this: longer than the hard time limit, so a live run is
    # never handed out twice, only the message of a dead worker host.
    BROKER_VISIBILITY_TIMEOUT = _int("BROKER_VISIBILITY_TIMEOUT", 2 * TASK_TIME_LIMIT)
    # The sweeper fails a running evaluation only once the broker's retry can no longer come: the visibility
    # timeout for the message to return, one more run, and a minute of slack.
    SUBMISSION_STALE_RUNNING_SECONDS = _int(
        "SUBMISSION_STALE_RUNNING_SECONDS", BROKER_VISIBILITY_TIMEOUT + TASK_TIME_LIMIT + 60
    )
    SWEEP_INTERVAL_SECONDS = _float("SWEEP_INTERVAL_SECONDS", 60)  # how often the scheduler runs the sweeper
    API_TOKEN_HOURS = _int("API_TOKEN_HOURS", 24)
    # The beat checks the timeline this often; an action applied more than SCHEDULE_LATE_SECONDS after its
    # time (the platform was down) is marked "applied late" in the audit log.
    SCHEDULE_POLL_SECONDS = _float("SCHEDULE_POLL_SECONDS", 15)
    SCHEDULE_LATE_SECONDS = _int("SCHEDULE_LATE_SECONDS", 60)
    AUDIT_PER_PAGE = _int("AUDIT_PER_PAGE", 50)
    ANNOUNCEMENT_MAIL_BATCH = _int("ANNOUNCEMENT_MAIL_BATCH", 50)

    LOGIN_LIMIT_PER_ACCOUNT = os.environ.get("LOGIN_LIMIT_PER_ACCOUNT") or "10 per 5 minutes"
    LOGIN_LIMIT_PER_ADDRESS = os.environ.get("LOGIN_LIMIT_PER_ADDRESS") or "300 per 5 minutes"
    # Uploads per team in any rolling 24 hours (failed ones do not count); 0 means unlimited.
    DEFENCE_UPLOADS_PER_DAY = _int("DEFENCE_UPLOADS_PER_DAY", 10)
    ATTACK_UPLOADS_PER_DAY = _int("ATTACK_UPLOADS_PER_DAY", 20)
    PASSWORD_RESET_MINUTES = _int("PASSWORD_RESET_MINUTES", 30)
    PASSWORD_RESET_LIMIT_PER_EMAIL = os.environ.get("PASSWORD_RESET_LIMIT_PER_EMAIL") or "3 per hour"
    PASSWORD_RESET_LIMIT_PER_ADDRESS = os.environ.get("PASSWORD_RESET_LIMIT_PER_ADDRESS") or "60 per hour"
    # A registration is completed through a link mailed to its address, valid this long.
    REGISTRATION_CONFIRM_HOURS = _int("REGISTRATION_CONFIRM_HOURS", 24)
    # Registrations that send a mail (a form refused for a typo does not count), per address typed and per client.
    REGISTRATION_LIMIT_PER_EMAIL = os.environ.get("REGISTRATION_LIMIT_PER_EMAIL") or "3 per hour"
    REGISTRATION_LIMIT_PER_ADDRESS = os.environ.get("REGISTRATION_LIMIT_PER_ADDRESS") or "1000 per hour"
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
    STORAGE_MIN_FREE_MB = 0  # tests of the free-space check set their own


class ProductionConfig(Config):
    """Production needs SECRET_KEY set, and not to a public value (checked in create_app); secure cookies."""

    PRODUCTION = True
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE


CONFIGS = {"development": Config, "testing": TestingConfig, "production": ProductionConfig}
