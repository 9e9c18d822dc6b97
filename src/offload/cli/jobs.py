"""``offload jobs``: list, show, cancel and retry stored jobs.

These commands only read and steer, so ``--backend`` alone is enough; with an
``--app`` they use its backend and serializer (needed to decode results written
by a custom serializer).
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.panel import Panel
from rich.text import Text

from offload.app import App
from offload.cli.output import (
    console,
    echo_json,
    event_dict,
    events_table,
    job_dict,
    job_fields_table,
    jobs_table,
)
from offload.cli.runtime import CliState, build_app, check_job_id, run, target_options
from offload.job import Event, Job, JobQuery
from offload.lifecycle import State

STATES = [s.value for s in State]


def query_options(fn: click.decorators.FC) -> click.decorators.FC:
    """The filters ``jobs list`` and ``dead list`` share."""
    for option in (
        click.option("--queue", help="Only this queue."),
        click.option("--task", help="Only this task name."),
        click.option("--tenant", help="Only this tenant."),
        click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ):
        fn = option(fn)
    return fn


@click.group("jobs")
def jobs() -> None:
    """List, inspect, cancel and retry jobs."""


@jobs.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES),
              help="Only jobs in this state (repeatable).")  # fmt: skip
@query_options
@target_options
@click.pass_obj
def list_jobs(state: CliState, states: Sequence[str], queue: str | None, task: str | None,
              tenant: str | None, limit: int, as_json: bool) -> None:  # fmt: skip
    """Jobs, newest first."""
    query = JobQuery(
        tenant=tenant, queue=queue, task=task, limit=limit,
        states=frozenset(State(s) for s in states) or None,
    )  # fmt: skip
    found = run(build_app(state, read_only=True), lambda app: app.list_jobs_async(query))
    if as_json:
        echo_json([job_dict(job) for job in found])
    else:
        console.print(jobs_table(found, title=f"{len(found)} job(s)"))


@jobs.command("show")
@click.argument("job_id", metavar="ID")
@click.option("--tenant", help="Only if the job belongs to this tenant.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@target_options
@click.pass_obj
def show(state: CliState, job_id: str, tenant: str | None, as_json: bool) -> None:
    """One job: its fields, its event history and its last error."""
    check_job_id(job_id)

    async def read(app: App) -> tuple[Job, list[Event]]:
        job = await app.get_job_async(job_id, tenant)
        return job, await app.events_async(job_id)

    job, events = run(build_app(state, read_only=True), read)
    if as_json:
        echo_json({"job": job_dict(job, details=True), "events": [event_dict(e) for e in events]})
        return
    print_job(job, events)


def print_job(job: Job, events: list[Event]) -> None:
    console.print(job_fields_table(job))
    console.print(events_table(events))
    if job.error is not None:
        body = job.error.traceback or f"{job.error.type}: {job.error.message}"
        title = f"error: {job.error.type}"
        console.print(Panel(Text(body.rstrip()), title=title, border_style="red", expand=False))


@jobs.command("cancel")
@click.argument("job_id", metavar="ID")
@click.option("--tenant", help="Only if the job belongs to this tenant.")
@target_options
@click.pass_obj
def cancel(state: CliState, job_id: str, tenant: str | None) -> None:
    """Cancel a waiting job, or ask the worker running it to stop it."""
    check_job_id(job_id)
    # An ended job raises JobEndedError, which run() turns into exit code 1.
    job = run(build_app(state), lambda app: app.cancel_async(job_id, tenant))
    if job.state is State.RUNNING:
        click.echo(f"{job.id} is running: cancellation requested from its worker")
    else:
        click.echo(f"{job.id} cancelled")


@jobs.command("retry")
@click.argument("job_id", metavar="ID")
@click.option("--tenant", help="Only if the job belongs to this tenant.")
@target_options
@click.pass_obj
def retry(state: CliState, job_id: str, tenant: str | None) -> None:
    """Queue a dead or cancelled job again (attempts start over)."""
    redrive_one(build_app(state), job_id, tenant)


def redrive_one(app: App, job_id: str, tenant: str | None) -> None:
    """Shared by ``jobs retry`` and ``dead retry``: exit 1 when refused."""
    check_job_id(job_id)

    async def redrive(app: App) -> tuple[Job | None, Job]:
        retried = await app.retry_async(job_id, tenant)
        return retried, await app.get_job_async(job_id, tenant)

    retried, now = run(app, redrive)
    if retried is None:
        raise click.ClickException(
            f"{job_id} is {now.state.value}; only dead or cancelled jobs can be retried"
        )
    click.echo(f"{job_id} queued again")
