"""``offload dead``: the dead letter, i.e. jobs that used up their attempts or
could not be decoded; list them with their last error and re-drive them."""

from __future__ import annotations

import click

from offload.app import App
from offload.cli.jobs import query_options, redrive_one
from offload.cli.output import console, echo_json, job_dict, jobs_table
from offload.cli.runtime import CliState, build_app, run, target_options
from offload.job import JobQuery
from offload.lifecycle import State

DEAD = frozenset({State.DEAD})
PAGE = 500


@click.group("dead")
def dead() -> None:
    """Inspect and re-drive dead jobs."""


@dead.command("list")
@query_options
@target_options
@click.pass_obj
def list_dead(state: CliState, queue: str | None, task: str | None, tenant: str | None,
              limit: int, as_json: bool) -> None:  # fmt: skip
    """Dead jobs, newest first, with their last error."""
    query = JobQuery(tenant=tenant, states=DEAD, queue=queue, task=task, limit=limit)
    found = run(build_app(state, read_only=True), lambda app: app.list_jobs_async(query))
    if as_json:
        echo_json([job_dict(job) for job in found])
    else:
        console.print(jobs_table(found, title=f"{len(found)} dead job(s)", errors=True))


@dead.command("retry")
@click.argument("job_id", metavar="ID", required=False)
@click.option("--all", "every", is_flag=True, help="Every dead job (of the filters below).")
@click.option("--queue", help="With --all: only this queue.")
@click.option("--task", help="With --all: only this task name.")
@click.option("--tenant", help="Only jobs of this tenant.")
@target_options
@click.pass_obj
def retry_dead(state: CliState, job_id: str | None, every: bool, queue: str | None,
               task: str | None, tenant: str | None) -> None:  # fmt: skip
    """Queue dead jobs again: one by ID, or --all."""
    if bool(job_id) == every:
        raise click.UsageError("give either a job ID or --all")
    app = build_app(state)
    if job_id:
        redrive_one(app, job_id, tenant)
        return
    query = JobQuery(tenant=tenant, states=DEAD, queue=queue, task=task, limit=PAGE)
    count = run(app, lambda a: redrive_all(a, query))
    click.echo(f"{count} job(s) queued again")


async def redrive_all(app: App, query: JobQuery) -> int:
    """Page by id rather than re-querying the dead set, so a job that another
    process moves in between can never make this loop spin."""
    backend = await app.backend()
    count = 0
    while page := await app.list_jobs_async(query):
        for job in page:
            count += await backend.job_redrive(job.id, job.tenant) is not None
        query = JobQuery(
            tenant=query.tenant, states=DEAD, queue=query.queue, task=query.task,
            before_id=page[-1].id, limit=query.limit,
        )  # fmt: skip
    return count
