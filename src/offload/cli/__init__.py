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

from offload.cli.batches import batches
from offload.cli.control import pause, resume
from offload.cli.dead import dead
from offload.cli.demo import demo
from offload.cli.enqueue import enqueue
from offload.cli.jobs import jobs
from offload.cli.migrate import migrate
from offload.cli.queues import queues
from offload.cli.runtime import CliState
from offload.cli.schedules import schedules
from offload.cli.web import web
from offload.cli.worker import worker
from offload.cli.workers import workers


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", "backend_url", envvar="OFFLOAD_BACKEND_URL", metavar="URL",
              help="Backend URL [env OFFLOAD_BACKEND_URL].")  # fmt: skip
@click.option("--app", "app_spec", envvar="OFFLOAD_APP", metavar="MODULE:ATTR",
              help="The App, for commands that need its tasks [env OFFLOAD_APP].")  # fmt: skip
@click.version_option(package_name="offload")
@click.pass_context
def main(ctx: click.Context, backend_url: str | None, app_spec: str | None) -> None:
    """offload: background jobs for Python."""
    ctx.obj = CliState(backend_url=backend_url, app_spec=app_spec)


for command in (worker, web, enqueue, jobs, dead, queues, batches, schedules, pause, resume,
                workers, demo, migrate):  # fmt: skip
    main.add_command(command)

__all__ = ["main"]
