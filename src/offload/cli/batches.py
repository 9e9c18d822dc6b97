"""``offload batches``: list a tenant's batches with their progress, show one,
cancel one, and wait for one with a progress bar (exit 0 when every job
succeeded, 1 when some ended otherwise)."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from offload.app import App
from offload.cli.output import console, echo_json, styled_state, when
from offload.cli.runtime import CliState, build_app, check_job_id, run, target_options
from offload.job import Batch
from offload.lifecycle import State


def batch_dict(b: Batch) -> dict[str, Any]:
    return {
        "id": b.id, "tenant": b.tenant, "name": b.name, "created_at": b.created_at,
        "finished_at": b.finished_at, "total": b.total,
        "counts": {str(s): n for s, n in b.counts.items() if n},
        "continuation_ids": b.continuation_ids,
    }  # fmt: skip


def ended_count(b: Batch) -> int:
    return sum(n for s, n in b.counts.items() if s.ended)


def counts_text(b: Batch) -> str:
    return " ".join(f"{styled_state(s)} {n}" for s, n in sorted(b.counts.items()) if n)


@click.group("batches")
def batches() -> None:
    """Batches of jobs: list, show, cancel, wait."""


@batches.command("list")
@click.option("--tenant", help="Only this tenant's batches.")
@click.option("--unfinished", is_flag=True, help="Only batches still running.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@target_options
@click.pass_obj
def list_batches(state: CliState, tenant: str | None, unfinished: bool, limit: int,
                 as_json: bool) -> None:  # fmt: skip
    """Batches newest first, with counts per state."""
    found = run(build_app(state, read_only=True),
                lambda a: a.batches_async(tenant, unfinished=unfinished, limit=limit))  # fmt: skip
    if as_json:
        echo_json([batch_dict(b) for b in found])
        return
    table = Table("id", "tenant", "name", "done", "states", "created", "finished",
                  title=f"{len(found)} batch(es)")  # fmt: skip
    for b in found:
        table.add_row(b.id, b.tenant, b.name or "", f"{ended_count(b)}/{b.total}",
                      counts_text(b), when(b.created_at), when(b.finished_at))  # fmt: skip
    console.print(table)


@batches.command("show")
@click.argument("batch_id", metavar="ID")
@click.option("--tenant", help="The batch's tenant (refuse others).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@target_options
@click.pass_obj
def show_batch(state: CliState, batch_id: str, tenant: str | None, as_json: bool) -> None:
    """One batch with its counts and continuation jobs."""
    found = run(
        build_app(state, read_only=True),
        lambda a: a.get_batch_async(check_job_id(batch_id), tenant),
    )
    if as_json:
        echo_json(batch_dict(found))
        return
    table = Table.grid(padding=(0, 2))
    for key, value in batch_dict(found).items():
        table.add_row(key, str(value) if not isinstance(value, dict) else counts_text(found))
    console.print(table)


@batches.command("cancel")
@click.argument("batch_id", metavar="ID")
@click.option("--tenant", help="The batch's tenant (refuse others).")
@target_options
@click.pass_obj
def cancel_batch(state: CliState, batch_id: str, tenant: str | None) -> None:
    """Cancel the batch's waiting jobs and ask running ones to stop."""
    found = run(build_app(state), lambda a: a.cancel_batch_async(check_job_id(batch_id), tenant))
    console.print(f"batch {found.id}: {counts_text(found) or 'no jobs'}")


@batches.command("wait")
@click.argument("batch_id", metavar="ID")
@click.option("--tenant", help="The batch's tenant (refuse others).")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after S seconds (exit 1).")
@target_options
@click.pass_obj
def wait_batch(state: CliState, batch_id: str, tenant: str | None, timeout: float | None) -> None:
    """Follow a batch with a progress bar until every job has ended."""
    check_job_id(batch_id)

    async def follow(app: App) -> Batch:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:  # fmt: skip
            task = bar.add_task(f"batch {batch_id[:8]}", total=None)
            while True:
                b = await app.get_batch_async(batch_id, tenant)
                bar.update(task, total=b.total, completed=ended_count(b))
                if b.ended or (b.total == 0 and b.finished_at is not None):
                    return b
                if deadline is not None and loop.time() > deadline:
                    raise click.ClickException(f"batch {batch_id} not done after {timeout:g}s")
                await asyncio.sleep(0.2)

    done = run(build_app(state), follow)
    console.print(f"batch {done.id}: {counts_text(done)}")
    if any(n for s, n in done.counts.items() if s is not State.SUCCEEDED):
        raise click.exceptions.Exit(1)
