"""State: the only importer of SQLAlchemy and Alembic. SQLite by default, PostgreSQL by URL — same code."""

from shoal.store.database import Database, open_database

__all__ = ["Database", "open_database"]
