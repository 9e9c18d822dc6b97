"""``offload migrate``: create or upgrade the backend's tables, once, on purpose.

Backends migrate when they open unless told not to (PostgreSQL's
``?migrate=false``, for deployments where the application's role may not run
DDL); this is the command such a deployment runs with a role that may.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from offload.app import App
from offload.cli.runtime import CliState, build_app, run, target_options
from offload.observability.logs import redact


@click.command("migrate")
@target_options
@click.pass_obj
def migrate(state: CliState) -> None:
    """Create or upgrade the backend's tables; safe to run again."""
    app = build_app(state)
    scheme = urlsplit(app.backend_url).scheme.lower()
    if scheme in ("postgresql", "postgres"):
        from offload.backends.postgres.migrate import migrate as migrate_postgres

        applied = run(app, lambda a: migrate_postgres(a.backend_url))
        done = f"applied migration(s) {', '.join(map(str, applied))}" if applied else "up to date"
    else:
        run(app, _open)  # SQLite migrates when it opens; the others have no tables
        done = "up to date"
    click.echo(f"{redact(app.backend_url)}: {done}")


async def _open(app: App) -> None:
    await app.backend()
