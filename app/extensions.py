"""Flask extensions, created unbound and bound to an app in create_app."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _sqlite_settings(dbapi_connection, connection_record) -> None:
    """SQLite ignores foreign keys unless asked: enforce them as PostgreSQL does. Write-ahead logging with
    synchronous=NORMAL: readers never wait for the writer, and a commit writes its log without waiting for the
    disk (about 0.1 ms instead of 20: an upload's path commits a dozen times). A power cut can lose the last
    commits, never corrupt the database; `sqlite3 app.db .backup` copies it whole. (An in-memory database
    keeps its own journal.)"""
    if type(dbapi_connection).__module__ == "sqlite3":
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


migrate = Migrate()
login = LoginManager()
login.login_view = "auth.login"
login.login_message = "Please log in to access this page."
csrf = CSRFProtect()
mail = Mail()
limiter = Limiter(key_func=get_remote_address)
