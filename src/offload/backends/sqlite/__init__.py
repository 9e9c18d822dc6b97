"""SQLite backend: ``sqlite:///relative.db`` or ``sqlite:////absolute.db``.

``SQLiteBackend`` is what ``App("sqlite:///…")`` builds; ``SCHEMA_VERSION`` is
the number of migrations (``sql/migrations``) a file it opens is brought to.
See docs/backends/sqlite.md.
"""

from offload.backends.sqlite.backend import SCHEMA_VERSION, SQLiteBackend

__all__ = ["SCHEMA_VERSION", "SQLiteBackend"]
