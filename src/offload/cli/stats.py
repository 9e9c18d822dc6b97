"""``offload stats``: all-time totals per queue and the last days, which stay
after the purge removes the jobs they count."""

from __future__ import annotations

import click
from rich.table import Table

from offload.cli.output import console, echo_json
from offload.cli.runtime import CliState, build_app, run, target_options
from offload.stats import MAX_DAYS, OUTCOMES, Stats, Tally

_COLUMNS = ("processed", "failed", *(o.value for o in OUTCOMES))


def _cells(tally: Tally) -> list[str]:
    counts = tally.as_dict()
    return [f"{counts[c]:,}" for c in _COLUMNS]


def totals_table(found: Stats) -> Table:
    table = Table("queue", *_COLUMNS, title="all time")
    for queue, tally in sorted(found.queues.items()):
        table.add_row(queue, *_cells(tally))
    table.add_row("[bold]all[/bold]", *_cells(found.total))
    return table


def days_table(found: Stats) -> Table:
    table = Table("day (UTC)", *_COLUMNS, title=f"last {len(found.days)} day(s)")
    for day, tally in reversed(found.days):
        table.add_row(day.isoformat(), *_cells(tally))
    return table


@click.command("stats")
@click.option("--tenant", help="Only this tenant's jobs (default: every tenant).")
@click.option("--queue", help="Only this queue.")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=7, show_default=True,
              help="Days of history, today included.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@target_options
@click.pass_obj
def stats(state: CliState, tenant: str | None, queue: str | None, days: int,
          as_json: bool) -> None:  # fmt: skip
    """Jobs processed and failed per queue, all time and per day."""
    found = run(build_app(state), lambda app: app.stats_async(tenant, queue, days))
    if as_json:
        echo_json(found.as_dict())
        return
    console.print(totals_table(found))
    console.print(days_table(found))
