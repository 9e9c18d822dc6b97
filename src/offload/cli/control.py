"""``offload pause`` / ``offload resume``: stop and restart leasing for
everything, one queue, one tenant, or one queue of one tenant. Running jobs go
on; workers start nothing in a paused scope until it is resumed."""

from __future__ import annotations

import click
from rich.table import Table

from offload.cli.output import console, echo_json, when
from offload.cli.runtime import CliState, build_app, run, target_options


def _scope(tenant: str | None, queue: str | None) -> str:
    if tenant is None and queue is None:
        return "everything"
    parts = [f"queue {queue!r}" if queue else "", f"tenant {tenant!r}" if tenant else ""]
    return " of ".join(p for p in parts if p)


def _scope_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--queue", help="Only this queue.")(fn)
    return click.option("--tenant", help="Only this tenant.")(fn)


@click.command("pause")
@_scope_options
@click.option("--list", "listing", is_flag=True, help="Show the pauses in force instead.")
@click.option("--json", "as_json", is_flag=True, help="With --list: JSON.")
@target_options
@click.pass_obj
def pause(state: CliState, tenant: str | None, queue: str | None, listing: bool,
          as_json: bool) -> None:  # fmt: skip
    """Stop workers leasing jobs (of --queue and/or --tenant; default everything)."""
    app = build_app(state)
    if listing:
        pauses = run(app, lambda a: a.pauses_async(tenant))
        if as_json:
            echo_json([{"tenant": p.tenant, "queue": p.queue, "at": p.at} for p in pauses])
            return
        table = Table("scope", "since", title=f"{len(pauses)} pause(s)")
        for p in pauses:
            table.add_row(_scope(p.tenant, p.queue), when(p.at))
        console.print(table)
        return
    run(app, lambda a: a.pause_async(tenant=tenant, queue=queue))
    click.echo(f"paused {_scope(tenant, queue)}")


@click.command("resume")
@_scope_options
@target_options
@click.pass_obj
def resume(state: CliState, tenant: str | None, queue: str | None) -> None:
    """Lift the pause of exactly this scope; exit 1 when it was not paused."""
    lifted = run(build_app(state), lambda a: a.resume_async(tenant=tenant, queue=queue))
    if not lifted:
        raise click.ClickException(f"{_scope(tenant, queue)} was not paused")
    click.echo(f"resumed {_scope(tenant, queue)}")
