"""PostgreSQL access: a connection pool bound to one schema, and versioned migrations."""

from aigen.db.pool import Database, StartupError, connect

__all__ = ["Database", "StartupError", "connect"]
