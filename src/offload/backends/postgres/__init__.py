"""PostgreSQL backend: ``postgresql://user@host/db?schema=offload``.

``PostgresBackend`` is what ``App("postgresql://…")`` builds; ``enqueue_in`` and
``enqueue_in_sync`` write jobs inside the caller's own transaction; ``migrate``
brings a schema up to date ahead of deployment. See docs/backends/postgres.md.
"""

from offload.backends.postgres.backend import PostgresBackend
from offload.backends.postgres.enqueue import enqueue_in, enqueue_in_sync
from offload.backends.postgres.migrate import migrate

__all__ = ["PostgresBackend", "enqueue_in", "enqueue_in_sync", "migrate"]
