"""The ``offload`` command line: run workers, enqueue, and read and steer jobs.

It is thin by design: every command calls ``App`` methods or the backend
contract, so it behaves the same on every backend and never reaches into one's
tables or keys.

Exit codes (scripts may rely on them):

* ``0``: success.
* ``1``: the request could not be honoured: unknown job id, a refused transition
  (cancelling an ended job, retrying a job that is not dead or cancelled), invalid
  input (``--args`` that does not fit the task, unknown task), a backend error, or
  a worker stopped by a failing internal loop.
* ``2``: usage error: bad options or arguments, a bad ``--app`` spec or backend
  URL, a missing extra (``offload[web]``, ``[postgres]``, ...), or a command that
  needs the app's tasks run without ``--app``.
"""

from __future__ import annotations

import click

from offload.cli.lazy import LazyGroup
from offload.cli.runtime import CliState

# Each module is imported only when its command runs (see lazy.py).
COMMANDS = {
    name: f"offload.cli.{module}:{name}"
    for module, name in [
        ("worker", "worker"), ("web", "web"), ("enqueue", "enqueue"), ("jobs", "jobs"),
        ("dead", "dead"), ("queues", "queues"), ("batches", "batches"),
        ("schedules", "schedules"), ("control", "pause"), ("control", "resume"),
        ("workers", "workers"), ("demo", "demo"), ("workflows", "workflows"),
        ("stats", "stats"), ("migrate", "migrate"),
    ]
}  # fmt: skip


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})  # fmt: skip
@click.option("--backend", "backend_url", envvar="OFFLOAD_BACKEND_URL", metavar="URL",
              help="Backend URL [env OFFLOAD_BACKEND_URL].")  # fmt: skip
@click.option("--app", "app_spec", envvar="OFFLOAD_APP", metavar="MODULE:ATTR",
              help="The App, for commands that need its tasks [env OFFLOAD_APP].")  # fmt: skip
@click.version_option(package_name="offload")
@click.pass_context
def main(ctx: click.Context, backend_url: str | None, app_spec: str | None) -> None:
    """offload: background jobs for Python."""
    ctx.obj = CliState(backend_url=backend_url, app_spec=app_spec)


__all__ = ["main"]
