"""``offload workflows``: list workflows with their progress, show one as its
steps and edges, cancel one (waiting jobs at once, running ones asked to stop)."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from offload.cli.batches import counts_text, ended_count
from offload.cli.output import console, echo_json, styled_state, when
from offload.cli.runtime import CliState, build_app, check_job_id, run, target_options
from offload.workflow import Workflow


def workflow_dict(w: Workflow) -> dict[str, Any]:
    return {
        "id": w.id, "tenant": w.tenant, "name": w.name, "state": w.state,
        "created_at": w.created_at, "finished_at": w.finished_at, "counts": w.counts,
        "steps": {name: {"id": j.id, "task": j.task, "state": str(j.state)}
                  for name, j in w.jobs.items()},
        "edges": [list(e) for e in w.edges],
    }  # fmt: skip


@click.group("workflows")
def workflows() -> None:
    """Workflows (graphs of jobs): list, show, cancel."""


@workflows.command("list")
@click.option("--tenant", help="Only this tenant's workflows.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@target_options
@click.pass_obj
def list_workflows(state: CliState, tenant: str | None, limit: int, as_json: bool) -> None:
    """Workflows newest first, with their jobs counted per state."""
    found = run(build_app(state), lambda a: a.workflows_async(tenant, limit=limit))
    if as_json:
        echo_json([{"id": b.id, "tenant": b.tenant, "name": b.name, "total": b.total,
                    "counts": {str(s): n for s, n in b.counts.items() if n}}
                   for b in found])  # fmt: skip
        return
    table = Table("id", "tenant", "name", "done", "states", "created", "finished",
                  title=f"{len(found)} workflow(s)")  # fmt: skip
    for b in found:
        table.add_row(b.id, b.tenant, b.name or "", f"{ended_count(b)}/{b.total}",
                      counts_text(b), when(b.created_at), when(b.finished_at))  # fmt: skip
    console.print(table)


@workflows.command("show")
@click.argument("workflow_id", metavar="ID")
@click.option("--tenant", help="The workflow's tenant (refuse others).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@target_options
@click.pass_obj
def show_workflow(state: CliState, workflow_id: str, tenant: str | None, as_json: bool) -> None:
    """One workflow: each step with its state and the steps it runs after."""
    found = run(build_app(state),
                lambda a: a.get_workflow_async(check_job_id(workflow_id), tenant))  # fmt: skip
    if as_json:
        echo_json(workflow_dict(found))
        return
    after: dict[str, list[str]] = {}
    for parent, child in found.edges:
        after.setdefault(child, []).append(parent)
    table = Table("step", "state", "after", "job", title=f"workflow {found.id}: {found.state}")
    for name, job in found.jobs.items():
        table.add_row(name, styled_state(job.state), ", ".join(after.get(name, [])), job.id)
    console.print(table)


@workflows.command("cancel")
@click.argument("workflow_id", metavar="ID")
@click.option("--tenant", help="The workflow's tenant (refuse others).")
@target_options
@click.pass_obj
def cancel_workflow(state: CliState, workflow_id: str, tenant: str | None) -> None:
    """Cancel the workflow's waiting jobs and ask running ones to stop."""
    found = run(build_app(state),
                lambda a: a.cancel_workflow_async(check_job_id(workflow_id), tenant))  # fmt: skip
    counts = " ".join(f"{s} {n}" for s, n in sorted(found.counts.items()))
    console.print(f"workflow {found.id}: {found.state} ({counts or 'no jobs'})")
