"""The OpenAPI 3.1 document, written as data next to the routes it describes.

Written by hand rather than generated from docstrings because the protocol's
headers (``Location``, ``Retry-After``), empty ``204``/``303`` answers and problem
bodies are the point of the API, and a generator would leave them out. The test
suite checks every response against this document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.lifecycle import EventKind, State

Schema = dict[str, Any]

STR = {"type": "string"}
INT = {"type": "integer"}
TIME = {"type": ["string", "null"], "format": "date-time"}
NSTR = {"type": ["string", "null"]}
ANY: Schema = {}
STATES = {"type": "string", "enum": [s.value for s in State]}
COUNTS = {
    "type": "object",
    "properties": {s.value: INT for s in State},
    "required": [s.value for s in State],
}
PROBLEM_JSON = "application/problem+json"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Any], required: list[str] | None = None) -> Schema:
    return {"type": "object", "properties": props, "required": required or list(props)}


SNAPSHOT = {
    "id": STR,
    "task": STR,
    "queue": STR,
    "tenant": STR,
    "state": STATES,
    "attempts": INT,
    "progress": {"type": ["number", "null"]},
    "progress_message": NSTR,
    "cancel_requested": {"type": "boolean"},
    "batch_id": NSTR,
    "created_at": TIME,
    "started_at": TIME,
    "finished_at": TIME,
}
ERROR = {"oneOf": [{"type": "null"}, obj({"type": STR, "message": STR, "traceback": NSTR})]}
LINKS = obj({k: STR for k in ("self", "status", "output", "events", "stream")})
SUMMARY = SNAPSHOT | {
    "priority": INT,
    "max_attempts": INT,
    "timeout": {"type": ["number", "null"]},
    "run_at": TIME,
    "unique_key": NSTR,
    "worker_id": NSTR,
    "error": ERROR,
    "links": LINKS,
}
DETAIL = SUMMARY | {
    "args": ANY,
    "result": ANY,
    "checkpoint": ANY,
    "decode_errors": {"type": "object", "additionalProperties": STR},
}
EVENT = {
    "id": INT,
    "job_id": STR,
    "tenant": STR,
    "kind": {"type": "string", "enum": [k.value for k in EventKind]},
    "at": {"type": "string", "format": "date-time"},
    "data": {"type": "object"},
}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
PRIORITY = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
DELAY = {"type": "number", "minimum": 0, "maximum": 315360000}
UNIQUE_KEY = {"type": "string", "minLength": 1, "maxLength": 500}
ATTEMPTS = {"type": "integer", "minimum": 1, "maximum": 1000}
TIMEOUT = {"type": "number", "exclusiveMinimum": 0, "maximum": 315360000}


def options(**props: Schema) -> Schema:
    return {"type": "object", "additionalProperties": False, "properties": props}


OPTIONS = options(queue=NAME, tenant=NAME, priority=PRIORITY, delay=DELAY, unique_key=UNIQUE_KEY,
                  max_attempts=ATTEMPTS, timeout=TIMEOUT)  # fmt: skip
MEMBER_OPTIONS = options(queue=NAME, priority=PRIORITY, delay=DELAY, unique_key=UNIQUE_KEY,
                         max_attempts=ATTEMPTS, timeout=TIMEOUT)  # fmt: skip
TEMPLATE_OPTIONS = options(queue=NAME, priority=PRIORITY, max_attempts=ATTEMPTS, timeout=TIMEOUT)
ARGS = {"oneOf": [{"type": "object"}, {"type": "array"}]}
TASK_NAME = {"type": "string", "minLength": 1, "maxLength": 500}


def job_request(options_schema: str) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["task"],
        "properties": {"task": TASK_NAME, "args": ARGS, "options": ref(options_schema)},
    }


ENQUEUE = job_request("EnqueueOptions")
TASK = obj(
    {
        "name": STR,
        "queue": STR,
        "priority": INT,
        "max_attempts": INT,
        "timeout": {"type": ["number", "null"]},
        "args_schema": {"type": ["object", "null"]},
    }
)

BATCH = obj(
    {
        "id": STR,
        "tenant": STR,
        "name": NSTR,
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": TIME,
        "total": INT,
        "ended": INT,
        "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "done": {"type": "boolean"},
        "counts": COUNTS,
        "then": {"type": "array", "items": obj({"task": STR, "queue": STR})},
        "continuation_ids": {"type": "array", "items": STR},
        "links": obj({k: STR for k in ("self", "jobs", "cancel", "stream")}),
    }
)
SCHEDULE = obj(
    {
        "id": STR,
        "tenant": STR,
        "task": STR,
        "cron": STR,
        "timezone": STR,
        "args": ANY,
        "queue": STR,
        "priority": INT,
        "max_attempts": INT,
        "timeout": {"type": ["number", "null"]},
        "unique": {"type": "boolean"},
        "next_run_at": TIME,
        "upcoming": {"type": "array", "items": {"type": "string", "format": "date-time"}},
        "last_run_at": TIME,
        "last_job_id": NSTR,
        "created_at": TIME,
        "updated_at": TIME,
        "links": obj({"self": STR, "last_job": NSTR}),
    }
)
NNAME = {"oneOf": [{"type": "null"}, NAME]}
PAUSE_SCOPE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"tenant": NNAME, "queue": NNAME},
}

SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {"type": STR, "title": STR, "status": INT, "detail": STR},
    },
    "JobSnapshot": obj(SNAPSHOT),
    "JobSummary": obj(SUMMARY),
    "Job": obj(DETAIL),
    "JobWithEvents": obj(DETAIL | {"events": {"type": "array", "items": ref("Event")}}),
    "Event": obj(EVENT),
    "EnqueueOptions": OPTIONS,
    "EnqueueRequest": ENQUEUE,
    "JobPage": obj({"jobs": {"type": "array", "items": ref("JobSummary")}, "next_before": NSTR}),
    "EventList": obj({"events": {"type": "array", "items": ref("Event")}}),
    "EventFeed": obj({"events": {"type": "array", "items": ref("Event")}, "cursor": INT}),
    "Queues": obj(
        {"queues": {"type": "array", "items": obj({"name": STR, "counts": COUNTS, "total": INT})}}
    ),
    "Workers": obj(
        {
            "complete": {"type": "boolean"},
            "workers": {
                "type": "array",
                "items": obj(
                    {
                        "id": STR,
                        "running": INT,
                        "queues": {"type": "array", "items": STR},
                        "jobs": {"type": "array", "items": STR},
                        "alive": {"type": "boolean"},
                        "hostname": {"type": ["string", "null"]},
                        "pid": {"type": ["integer", "null"]},
                        "concurrency": {"type": ["integer", "null"]},
                        "started_at": TIME,
                        "last_seen_at": TIME,
                    }
                ),
            },
        }
    ),
    "Tenants": obj(
        {
            "complete": {"type": "boolean"},
            "tenants": {
                "type": "array",
                "items": obj({"name": STR, "jobs": INT, "counts": COUNTS}),
            },
        }
    ),
    "Tasks": obj({"tasks": {"type": "array", "items": TASK}}),
    "PurgeRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"older_than": {"type": "number", "minimum": 0, "maximum": 315360000}},
    },
    "PurgeResult": obj({"purged": INT}),
    "Me": obj({"tenant": NSTR, "admin": {"type": "boolean"}}),
    "MemberOptions": MEMBER_OPTIONS,
    "TemplateOptions": TEMPLATE_OPTIONS,
    "BatchJob": job_request("MemberOptions"),
    "ThenJob": job_request("TemplateOptions"),
    "BatchRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["jobs"],
        "properties": {
            "jobs": {"type": "array", "items": ref("BatchJob"), "maxItems": 1000},
            "then": {"type": "array", "items": ref("ThenJob"), "maxItems": 100},
            "name": NNAME,
            "tenant": NNAME,
        },
    },
    "BatchAppendRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["jobs"],
        "properties": {
            "jobs": {"type": "array", "items": ref("BatchJob"), "minItems": 1, "maxItems": 1000}
        },
    },
    "Batch": BATCH,
    "BatchPage": obj({"batches": {"type": "array", "items": ref("Batch")}, "next_before": NSTR}),
    "BatchAppended": obj(
        {"batch": ref("Batch"), "jobs": {"type": "array", "items": ref("JobSummary")}}
    ),
    "ScheduleRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["task", "cron"],
        "properties": {
            "task": TASK_NAME,
            "cron": {"type": "string", "minLength": 1, "maxLength": 200},
            "args": ARGS,
            "timezone": {"type": "string", "minLength": 1, "maxLength": 200},
            "unique": {"type": "boolean"},
            "options": ref("TemplateOptions"),
        },
    },
    "Schedule": SCHEDULE,
    "Schedules": obj({"schedules": {"type": "array", "items": ref("Schedule")}}),
    "PauseScope": PAUSE_SCOPE,
    "Pause": obj({"tenant": NSTR, "queue": NSTR, "at": TIME}),
    "Pauses": obj({"pauses": {"type": "array", "items": ref("Pause")}}),
}


# responses -------------------------------------------------------------------------


def problem(description: str) -> Schema:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": ref("Problem")}}}


def body(description: str, schema: Schema, headers: Schema | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def header(description: str, schema: Schema = STR) -> Schema:
    return {"description": description, "required": True, "schema": schema}


BAD = {"400": problem("A query parameter or header is not valid")}
MISSING = {"404": problem("No such job, the id is malformed, or it belongs to another tenant")}
PAGE_PARAMS = ["state", "queue", "task", "tenant", "before", "limit"]


def param(name: str, schema: Schema, description: str, where: str = "query") -> Schema:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


PARAMS = {
    "job_id": param("job_id", STR, "The job's id (a UUID)", "path"),
    "state": param("state", STR, "Comma-separated states: " + ", ".join(s.value for s in State)),
    "queue": param("queue", STR, "Only jobs of this queue"),
    "task": param("task", STR, "Only jobs of this task"),
    "tenant": param("tenant", STR, "Only this tenant (admins; a tenant token sees its own)"),
    "before": param("before", STR, "Page: jobs older than this id (a UUID)"),
    "limit": param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Page size"),
    "after": param("after", {"type": "integer", "minimum": 0}, "Only events after this id"),
    "token": param("token", STR, "Bearer token, for clients that cannot set headers"),
    "batch_id": param("batch_id", STR, "The batch's id (a UUID)", "path"),
    "schedule_id": param("schedule_id", STR, "The schedule's id, unique within its tenant", "path"),
    "batch_before": param("before", STR, "Page: batches older than this id (a UUID)"),
    "unfinished": param(
        "unfinished",
        {"type": "string", "enum": ["true", "false", "1", "0"]},
        "Only batches whose continuations have not fired yet",
    ),
    "next": param(
        "next",
        {"type": "integer", "minimum": 1, "maximum": 50},
        "How many next firings to list (default 5)",
    ),
    "schedule_tenant": param(
        "tenant",
        STR,
        "The schedule's tenant (admins; default `default`; a tenant token always uses its own)",
    ),
}


def op(summary: str, responses: Schema, params: Sequence[str] = (), **extra: Any) -> Schema:
    out: Schema = {
        "summary": summary,
        "parameters": [PARAMS[p] for p in params],
        "responses": responses,
        **extra,
    }
    out["responses"].setdefault("401", problem("Missing or invalid bearer token"))
    return out


def json_request(schema: str, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": ref(schema)}}}


SSE = {
    "description": "text/event-stream of `ready` then `job` messages ({event, job})",
    "content": {"text/event-stream": {"schema": STR}},
}
HTML = {"description": "An HTML page", "content": {"text/html": {"schema": STR}}}


def _protocol_paths() -> dict[str, Schema]:
    location = {"Location": header("Where to poll the job's status")}
    return {
        "/api/v1/jobs": {
            "post": op(
                "Enqueue a job (202, Location of its status)",
                {
                    "202": body("Accepted", ref("Job"), location),
                    "400": problem("The body is not JSON"),
                    "413": problem("The body is too large"),
                    "422": problem("Unknown task, invalid arguments or options"),
                },
                requestBody=json_request("EnqueueRequest"),
            ),
            "get": op(
                "List jobs, newest first",
                {"200": body("A page of jobs", ref("JobPage")), **BAD},
                PAGE_PARAMS,
            ),
        },
        "/api/v1/jobs/{job_id}/status": {
            "get": op(
                "Poll a job",
                {
                    "204": {
                        "description": "Not ended yet; poll again after Retry-After seconds",
                        "headers": {"Retry-After": header("Seconds", INT)},
                    },
                    "303": {
                        "description": "Succeeded; see its output",
                        "headers": {"Location": header("The output")},
                    },
                    "409": problem("The job is dead or cancelled (state and error in the body)"),
                    **MISSING,
                },
                ["job_id"],
            )
        },
        "/api/v1/jobs/{job_id}/output": {
            "get": op(
                "The result of a succeeded job",
                {
                    "200": body("The task's return value, as JSON", ANY),
                    "409": problem("The job has not succeeded"),
                    **MISSING,
                },
                ["job_id"],
            )
        },
    }


def _resource_paths() -> dict[str, Schema]:
    job = {"200": body("The job", ref("Job")), **MISSING}
    return {
        "/api/v1/jobs/{job_id}": {
            "get": op(
                "A job with its events",
                {"200": body("The job and its events", ref("JobWithEvents")), **MISSING},
                ["job_id"],
            )
        },
        "/api/v1/jobs/{job_id}/events": {
            "get": op(
                "Events of a job, oldest first",
                {"200": body("Events", ref("EventList")), **BAD, **MISSING},
                ["job_id", "after", "limit"],
            )
        },
        "/api/v1/jobs/{job_id}/cancel": {
            "post": op(
                "Cancel a job",
                {
                    **job,
                    "202": body("Running: its worker was asked to stop", ref("Job")),
                    "409": problem("The job already succeeded or is dead"),
                },
                ["job_id"],
            )
        },
        "/api/v1/jobs/{job_id}/retry": {
            "post": op(
                "Run a dead or cancelled job again",
                {**job, "409": problem("The job is not dead or cancelled")},
                ["job_id"],
            )
        },
        "/api/v1/events": {
            "get": op(
                "Events of every visible job after a cursor",
                {"200": body("Events", ref("EventFeed")), **BAD},
                ["after", "limit", "tenant"],
            )
        },
        "/api/v1/queues": {
            "get": op(
                "Jobs per queue and state",
                {"200": body("Queues", ref("Queues")), **BAD},
                ["tenant"],
            )
        },
        "/api/v1/workers": {
            "get": op(
                "Workers: live ones from the registry (an admin sees idle ones too), and any "
                "whose running jobs the caller may see",
                {"200": body("Workers", ref("Workers")), **BAD},
                ["tenant"],
            )
        },
        "/api/v1/tenants": {
            "get": op("Tenants that own jobs", {"200": body("Tenants", ref("Tenants"))})
        },
        "/api/v1/tasks": {"get": op("Registered tasks", {"200": body("Tasks", ref("Tasks"))})},
        "/api/v1/dead": {
            "get": op(
                "The dead letter, newest first",
                {"200": body("Dead jobs", ref("JobPage")), **BAD},
                PAGE_PARAMS[1:],
            )
        },
        "/api/v1/dead/purge": {
            "post": op(
                "Delete dead jobs (admin)",
                {
                    "200": body("How many went", ref("PurgeResult")),
                    "400": problem("The body is not JSON"),
                    "403": problem("Not an admin token"),
                    "413": problem("The body is too large"),
                    "422": problem("Invalid body"),
                },
                requestBody=json_request("PurgeRequest", required=False),
            )
        },
        "/api/v1/stream": {
            "get": op(
                "Live events of every visible job (SSE)",
                {"200": SSE, **BAD},
                ["tenant", "after", "token"],
            )
        },
        "/api/v1/jobs/{job_id}/stream": {
            "get": op(
                "Live events of one job (SSE)",
                {"200": SSE, **BAD, **MISSING},
                ["job_id", "after", "token"],
            )
        },
    }


BATCH_MISSING = {
    "404": problem("No such batch, the id is malformed, or it belongs to another tenant")
}
SCHEDULE_MISSING = {"404": problem("No such schedule in that tenant, or the id is malformed")}
BODY_PROBLEMS = {
    "400": problem("The body is not JSON"),
    "413": problem("The body is too large"),
}


def _batch_paths() -> dict[str, Schema]:
    batch = {"200": body("The batch", ref("Batch")), **BATCH_MISSING}
    return {
        "/api/v1/batches": {
            "post": op(
                "Create a batch of jobs, with jobs to run once they have all ended",
                {
                    "201": body("Created", ref("Batch"), {"Location": header("The batch")}),
                    **BODY_PROBLEMS,
                    "422": problem("Unknown task, invalid arguments or options (named)"),
                },
                requestBody=json_request("BatchRequest"),
            ),
            "get": op(
                "List batches, newest first",
                {"200": body("A page of batches", ref("BatchPage")), **BAD},
                ["tenant", "unfinished", "batch_before", "limit"],
            ),
        },
        "/api/v1/batches/{batch_id}": {
            "get": op("A batch with its counts and progress", batch, ["batch_id"])
        },
        "/api/v1/batches/{batch_id}/jobs": {
            "get": op(
                "The batch's jobs, newest first",
                {"200": body("A page of jobs", ref("JobPage")), **BAD, **BATCH_MISSING},
                ["batch_id", "state", "before", "limit"],
            ),
            "post": op(
                "Add jobs to a batch that has not finished",
                {
                    "201": body("The jobs added and the batch", ref("BatchAppended")),
                    **BODY_PROBLEMS,
                    **BATCH_MISSING,
                    "409": problem("The batch has finished"),
                    "422": problem("Unknown task, invalid arguments or options (named)"),
                },
                ["batch_id"],
                requestBody=json_request("BatchAppendRequest"),
            ),
        },
        "/api/v1/batches/{batch_id}/cancel": {
            "post": op(
                "Cancel every job of the batch that has not ended",
                {
                    **batch,
                    "202": body(
                        "Some were running; their workers were asked to stop", ref("Batch")
                    ),
                },
                ["batch_id"],
            )
        },
        "/api/v1/batches/{batch_id}/stream": {
            "get": op(
                "Live counts of one batch (SSE: `ready` {cursor, batch}, then `batch` "
                "{event, job, batch})",
                {"200": SSE, **BAD, **BATCH_MISSING},
                ["batch_id", "after", "token"],
            )
        },
    }


def _control_paths() -> dict[str, Schema]:
    one = ["schedule_id", "schedule_tenant", "next"]
    return {
        "/api/v1/schedules": {
            "get": op(
                "Schedules with their next firings",
                {"200": body("Schedules", ref("Schedules")), **BAD},
                ["tenant", "next"],
            )
        },
        "/api/v1/schedules/{schedule_id}": {
            "get": op(
                "A schedule",
                {"200": body("The schedule", ref("Schedule")), **BAD, **SCHEDULE_MISSING},
                one,
            ),
            "put": op(
                "Create or replace a schedule",
                {
                    "200": body("Replaced", ref("Schedule")),
                    "201": body("Created", ref("Schedule"), {"Location": header("It")}),
                    "400": problem("The body is not JSON, or the id or a parameter is not valid"),
                    "404": problem("The path does not name a schedule"),
                    "413": problem("The body is too large"),
                    "422": problem("Bad cron rule, time zone, task or arguments (named)"),
                },
                one,
                requestBody=json_request("ScheduleRequest"),
            ),
            "delete": op(
                "Delete a schedule (the jobs it enqueued stay)",
                {"204": {"description": "Deleted"}, **BAD, **SCHEDULE_MISSING},
                one[:2],
            ),
        },
        "/api/v1/pauses": {
            "get": op(
                "Pauses holding back the caller's jobs",
                {"200": body("Pauses", ref("Pauses")), **BAD},
                ["tenant"],
            )
        },
        "/api/v1/pause": {
            "post": op(
                "Stop leasing in a scope ({} is everything); idempotent",
                {
                    "200": body("The pause", ref("Pause")),
                    **BODY_PROBLEMS,
                    "403": problem("Not a scope of the token's own tenant"),
                    "422": problem("Invalid scope"),
                },
                requestBody=json_request("PauseScope"),
            )
        },
        "/api/v1/resume": {
            "post": op(
                "Lift the pause of exactly this scope",
                {
                    "204": {"description": "Resumed"},
                    **BODY_PROBLEMS,
                    "403": problem("Not a scope of the token's own tenant"),
                    "409": problem("The scope is not paused"),
                    "422": problem("Invalid scope"),
                },
                requestBody=json_request("PauseScope"),
            )
        },
        "/api/v1/me": {
            "get": op("Who the token is: its tenant, or an admin", {"200": body("", ref("Me"))})
        },
    }


def _page_paths() -> dict[str, Schema]:
    pages = {
        "/": "Overview",
        "/jobs": "Jobs",
        "/dead": "Dead letter",
        "/batches": "Batches",
        "/schedules": "Schedules",
        "/queues": "Queues, pause and resume",
        "/widget-demo": "The end-user widget",
    }
    paths: dict[str, Schema] = {
        path: {
            "get": {
                "summary": f"Dashboard: {name}",
                "tags": ["dashboard"],
                "responses": {"200": HTML},
            }
        }
        for path, name in pages.items()
    }
    paths["/jobs/{job_id}"] = {
        "get": {
            "summary": "Dashboard: a job",
            "tags": ["dashboard"],
            "parameters": [PARAMS["job_id"]],
            "responses": {"200": HTML, **MISSING},
        }
    }
    paths["/batches/{batch_id}"] = {
        "get": {
            "summary": "Dashboard: a batch",
            "tags": ["dashboard"],
            "parameters": [PARAMS["batch_id"]],
            "responses": {"200": HTML, **BATCH_MISSING},
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "responses": {"200": body("OpenAPI 3.1", {"type": "object"})},
        }
    }
    return paths


def document(*, secured: bool) -> Schema:
    doc: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": "offload",
            "version": "1",
            "description": "Background jobs: the polling protocol, resources, live "
            "events. Errors are RFC 9457 problem documents.",
        },
        "paths": _protocol_paths()
        | _resource_paths()
        | _batch_paths()
        | _control_paths()
        | _page_paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    doc["security"] = [{"bearer": []}] if secured else [{}, {"bearer": []}]
    for path in _page_paths():
        for operation in doc["paths"][path].values():
            operation["security"] = [{}]
    return doc
