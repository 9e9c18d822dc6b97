"""``offload schedules``: list cron schedules with their next firings, add or
replace one, and delete one. Firing is the workers' job (each runs the
scheduler; every firing is enqueued once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.table import Table

from offload.app import App
from offload.cli.enqueue import find_task, parse_args
from offload.cli.output import console, echo_json, when_in
from offload.cli.runtime import CliState, build_app, run, target_options
from offload.job import DEFAULT_TENANT, Schedule
from offload.schedule import upcoming_firings


def schedule_dict(s: Schedule, upcoming: list[datetime]) -> dict[str, Any]:
    return {
        "id": s.id, "tenant": s.tenant, "task": s.task, "cron": s.cron,
        "description": s.description,
        "timezone": s.timezone, "queue": s.queue, "unique": s.unique,
        "next_run_at": s.next_run_at, "upcoming": upcoming, "last_run_at": s.last_run_at,
        "last_job_id": s.last_job_id,
    }  # fmt: skip


@click.group("schedules")
def schedules() -> None:
    """Cron schedules: list, add, delete."""


@schedules.command("list")
@click.option("--tenant", help="Only this tenant's schedules.")
@click.option("--next", "count", type=click.IntRange(1, 50), default=3, show_default=True,
              help="How many next firings to show.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@target_options
@click.pass_obj
def list_schedules(state: CliState, tenant: str | None, count: int, as_json: bool) -> None:
    """Schedules with their next firings, in each schedule's own zone."""
    found = run(build_app(state, read_only=True), lambda a: a.schedules_async(tenant))
    rows = [(s, upcoming_firings(s, count)) for s in found]
    if as_json:
        echo_json([schedule_dict(s, up) for s, up in rows])
        return
    table = Table("tenant", "id", "task", "cron", "zone", "next firings", "last job",
                  "description", title=f"{len(found)} schedule(s)")  # fmt: skip
    for s, up in rows:
        firings = "\n".join(when_in(t, s.timezone) for t in up) or "never"
        table.add_row(s.tenant, s.id, s.task, s.cron, s.timezone, firings, s.last_job_id or "",
                      s.description or "")  # fmt: skip
    console.print(table)


@schedules.command("add")
@click.argument("schedule_id", metavar="ID")
@click.argument("task_name", metavar="TASK")
@click.argument("cron")
@click.option("--args", "args_json", metavar="JSON", help="Arguments of each job.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone of the rule.")
@click.option("--unique", is_flag=True, help="Skip a firing while the last job runs.")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
@click.option("--queue", help="Queue [default: the task's].")
@click.option("--description", help="What the schedule is for, shown in lists.")
@target_options
@click.pass_obj
def add_schedule(state: CliState, schedule_id: str, task_name: str, cron: str,
                 args_json: str | None, timezone: str, unique: bool, tenant: str,
                 queue: str | None, description: str | None) -> None:  # fmt: skip
    """Create or replace schedule ID: a job of TASK at every firing of CRON
    (5 fields, or 6 with seconds first; quote it)."""
    args, kwargs = parse_args(args_json)
    app = build_app(state, need_tasks=True)

    async def store(app: App) -> Schedule:
        task = find_task(app, task_name)
        try:
            return await app.schedule_async(
                schedule_id, task, cron, args=args, kwargs=kwargs, timezone=timezone,
                unique=unique, tenant=tenant, queue=queue, from_json=True,
                description=description,
            )  # fmt: skip
        except ValueError as exc:  # a bad rule or zone; PayloadError is an OffloadError
            raise click.ClickException(str(exc)) from None

    stored = run(app, store)
    first = when_in(stored.next_run_at, stored.timezone)
    click.echo(f"schedule {stored.tenant}/{stored.id}: next firing {first}")


@schedules.command("delete")
@click.argument("schedule_id", metavar="ID")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
@target_options
@click.pass_obj
def delete_schedule(state: CliState, schedule_id: str, tenant: str) -> None:
    """Delete schedule ID; the jobs it enqueued stay. Exit 1 if there was none."""
    if not run(build_app(state), lambda a: a.unschedule_async(schedule_id, tenant)):
        raise click.ClickException(f"no schedule {schedule_id!r} in tenant {tenant!r}")
    click.echo(f"deleted schedule {tenant}/{schedule_id}")
