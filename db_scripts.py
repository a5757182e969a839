"""Staff helpers for `flask shell`: the same actions as the `flask` commands, as functions.

>>> populate_test_users()
>>> flush_matches()
>>> flush_db()
"""

from app.services.accounts import create_admin, populate_test_users
from app.services.maintenance import flush_db, flush_matches

__all__ = ["create_admin", "flush_db", "flush_matches", "populate_test_users"]
