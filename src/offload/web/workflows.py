"""Workflows over HTTP: the list, one graph with its nodes and edges, cancel.

A workflow is read through the ``App`` like a batch, so a tenant token reaches
only its own tenant's workflows (another tenant's is a 404). Nodes carry each
job's summary and its step name, edges name steps, so a client can draw the
graph without another request per job.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.errors import NotFoundError
from offload.web import params as p
from offload.web.api import JSON, PREFIX
from offload.web.context import offload_app, principal, root
from offload.web.openapi import (
    BAD,
    NSTR,
    STR,
    TIME,
    Component,
    Operation,
    Schema,
    array,
    body,
    obj,
    param,
    problem,
    route,
)
from offload.web.problems import Problem
from offload.web.resources import BATCH, batch_json, iso, job_summary
from offload.workflow import Workflow

MISSING = {"404": problem("No such workflow, the id is malformed, or it is another tenant's")}


def _missing(workflow_id: str) -> Problem:
    return Problem(404, f"no workflow {workflow_id!r}", kind="workflow-not-found")


def _workflow_id(request: Request) -> str:
    """The path's workflow id in canonical form (a UUID, like a batch's)."""
    raw = str(request.path_params.get("workflow_id", ""))
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise _missing(raw) from None


def workflow_json(flow: Workflow, base: str) -> dict[str, Any]:
    return {
        "id": flow.id, "tenant": flow.tenant, "name": flow.name, "state": flow.state,
        "created_at": iso(flow.created_at), "finished_at": iso(flow.finished_at),
        "counts": flow.counts,
        "nodes": [job_summary(j, base) | {"step": name} for name, j in flow.jobs.items()],
        "edges": [{"from": a, "to": b} for a, b in flow.edges],
    }  # fmt: skip


async def list_workflows(request: Request) -> Response:
    limit = p.limit(request)
    found = await offload_app(request).workflows_async(
        principal(request).scope(p.text(request, "tenant")),
        before_id=p.before(request, "workflow"), limit=limit,
    )  # fmt: skip
    following = found[-1].id if len(found) == limit else None
    return JSON({"workflows": [batch_json(b, root(request)) for b in found],
                 "next_before": following})  # fmt: skip


async def get_workflow(request: Request) -> Response:
    workflow_id = _workflow_id(request)
    try:
        flow = await offload_app(request).get_workflow_async(workflow_id, principal(request).tenant)
    except NotFoundError:
        raise _missing(workflow_id) from None
    return JSON(workflow_json(flow, root(request)))


async def cancel(request: Request) -> Response:
    workflow_id = _workflow_id(request)
    app = offload_app(request)
    try:
        flow = await app.cancel_workflow_async(workflow_id, principal(request).tenant)
    except NotFoundError:
        raise _missing(workflow_id) from None
    # Running jobs stop when their workers see the request: accepted, not done.
    code = 202 if flow.state == "running" else 200
    return JSON(workflow_json(flow, root(request)), code)


# the document ----------------------------------------------------------------------

NODE = {"type": "object", "description": "A JobSummary plus its `step` name"}
WORKFLOW = Component("Workflow", obj({
    "id": STR, "tenant": STR, "name": NSTR, "state": {"type": "string", "enum": [
        "running", "succeeded", "dead", "cancelled"]},
    "created_at": {"type": "string", "format": "date-time"}, "finished_at": TIME,
    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
    "nodes": array(NODE), "edges": array(obj({"from": STR, "to": STR})),
}))  # fmt: skip
PAGE = Component("WorkflowPage", obj({"workflows": array(BATCH), "next_before": NSTR}))
ID = param("workflow_id", STR, "The workflow's id (a UUID)", "path")
LIST_PARAMS: list[str | Schema] = [
    "tenant", param("before", STR, "Page: workflows older than this id"), "limit",
]  # fmt: skip


def routes() -> list[BaseRoute]:
    many, one = f"{PREFIX}/workflows", f"{PREFIX}/workflows/{{workflow_id}}"
    return [
        route(many, list_workflows, "GET", Operation(
            "List workflows, newest first, with their jobs counted per state",
            {"200": body("A page of workflows", PAGE), **BAD}, LIST_PARAMS)),
        route(one, get_workflow, "GET", Operation(
            "A workflow's graph: its jobs as nodes (with step names) and edges",
            {"200": body("The workflow", WORKFLOW), **MISSING}, [ID])),
        route(f"{one}/cancel", cancel, "POST", Operation(
            "Cancel every job of the workflow that has not ended",
            {"200": body("The workflow", WORKFLOW), **MISSING,
             "202": body("Some were running; their workers were asked to stop", WORKFLOW)},
            [ID])),
    ]  # fmt: skip
