"""``offload queues``: how many jobs each queue holds in each state."""

from __future__ import annotations

import click

from offload.app import App
from offload.backends.base import QueueCounts
from offload.cli.output import console, counts_by_queue, echo_json, queues_table
from offload.cli.runtime import CliState, build_app, run, target_options


async def queue_counts(app: App, tenant: str | None = None) -> QueueCounts:
    return await (await app.backend()).job_counts(tenant)


@click.command("queues")
@click.option("--tenant", help="Only jobs of this tenant.")
@click.option("--json", "as_json", is_flag=True, help="Print {queue: {state: count}}.")
@target_options
@click.pass_obj
def queues(state: CliState, tenant: str | None, as_json: bool) -> None:
    """Depth of every queue, per state."""
    counts = run(build_app(state, read_only=True), lambda app: queue_counts(app, tenant))
    if as_json:
        echo_json(counts_by_queue(counts))
    else:
        console.print(queues_table(counts))
