"""Reading what a request carries: ids, query parameters and JSON bodies.

Every parse failure becomes a ``Problem`` naming the parameter, so bad input is
always a 4xx the caller can fix and never reaches the catch-all handler.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from offload.lifecycle import State
from offload.validation import MAX_ATTEMPTS, MAX_KEY, MAX_SECONDS, PRIORITY_MAX, PRIORITY_MIN
from offload.web.encoding import MalformedJSON, loads
from offload.web.problems import Problem

MAX_LIMIT = 500
MAX_BODY = 4 * 1024 * 1024
# The bounds are offload.validation's, which Python and the CLI obey too; the
# model repeats them so the OpenAPI document shows them.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Priority = Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)]
Attempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS)]


def job_id(request: Request) -> str:
    """The path's job id in canonical form; anything that is not a UUID is a 404,
    since no such job can exist."""
    raw = str(request.path_params.get("job_id", ""))
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise Problem(404, f"no job {raw!r}", kind="job-not-found") from None


def batch_id(request: Request) -> str:
    """The path's batch id in canonical form; batch ids are UUIDs like job ids."""
    raw = str(request.path_params.get("batch_id", ""))
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise Problem(404, f"no batch {raw!r}", kind="batch-not-found") from None


def schedule_id(request: Request, *, creating: bool = False) -> str:
    """The path's schedule id: the name its owner gave it. One no schedule could
    carry is a 404 when read, and a 400 when a request would create it."""
    raw = str(request.path_params.get("schedule_id", ""))
    if 0 < len(raw) <= 200 and not any(ord(c) < 32 or ord(c) == 127 or c == "/" for c in raw):
        return raw
    if creating:
        raise Problem(400, "a schedule id is 1 to 200 printable characters without '/'",
                      kind="bad-parameter", parameter="schedule_id")  # fmt: skip
    raise Problem(404, f"no schedule {raw!r}", kind="schedule-not-found")


def limit(request: Request, default: int = 50) -> int:
    return _int_param(request, "limit", default, 1, MAX_LIMIT)


def after(request: Request) -> int:
    return _int_param(request, "after", 0, 0, 2**63 - 1)


def upcoming(request: Request) -> int:
    """How many next firings a schedule is shown with (``?next=``)."""
    return _int_param(request, "next", 5, 1, 50)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_param(name, f"must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise _bad_param(name, f"must be between {low} and {high}")
    return value


def before(request: Request, what: str = "job") -> str | None:
    raw = request.query_params.get("before")
    if not raw:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise _bad_param("before", f"must be a {what} id") from None


def flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise _bad_param(name, "must be true or false")


def states(request: Request) -> frozenset[State] | None:
    """``state`` repeated or comma-separated: ``?state=queued,running``."""
    words = [w.strip() for raw in request.query_params.getlist("state") for w in raw.split(",")]
    words = [w for w in words if w]
    if not words:
        return None
    try:
        return frozenset(State(w) for w in words)
    except ValueError:
        known = ", ".join(s.value for s in State)
        raise _bad_param("state", f"must be one of {known}") from None


def text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise _bad_param(name, "must be printable text of at most 200 characters")
    return raw


def _bad_param(name: str, why: str) -> Problem:
    return Problem(400, f"query parameter {name!r} {why}", kind="bad-parameter", parameter=name)


# bodies --------------------------------------------------------------------------


async def json_body(request: Request, *, empty: Any = ...) -> Any:
    """The parsed body; ``empty`` is returned for an empty body when given."""
    data = await _read(request)
    if not data.strip() and empty is not ...:
        return empty
    try:
        return loads(data)
    except MalformedJSON as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", kind="malformed-json") from None


async def _read(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Problem(413, f"the body is larger than {MAX_BODY} bytes", kind="body-too-large")
        chunks.append(chunk)
    return b"".join(chunks)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class EnqueueOptions(_Strict):
    queue: Name | None = None
    priority: Priority | None = None
    delay: Annotated[float, Field(ge=0, le=MAX_SECONDS)] = 0.0
    tenant: Name | None = None
    unique_key: Key | None = None
    max_attempts: Attempts | None = None
    timeout: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None


class EnqueueBody(_Strict):
    task: Key
    args: dict[str, Any] | list[Any] = Field(default_factory=dict)
    options: EnqueueOptions = EnqueueOptions()


class MemberOptions(_Strict):
    """What a batch member may set: its tenant is the batch's."""

    queue: Name | None = None
    priority: Priority | None = None
    delay: Annotated[float, Field(ge=0, le=MAX_SECONDS)] = 0.0
    unique_key: Key | None = None
    max_attempts: Attempts | None = None
    timeout: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None


class TemplateOptions(_Strict):
    """What a job enqueued later (a continuation, a schedule's firing) keeps of
    its options: a delay or unique key given now would be dropped, so they are
    refused rather than silently ignored."""

    queue: Name | None = None
    priority: Priority | None = None
    max_attempts: Attempts | None = None
    timeout: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None


TaskName = Key
Args = dict[str, Any] | list[Any]


class MemberJob(_Strict):
    task: TaskName
    args: Args = Field(default_factory=dict)
    options: MemberOptions = MemberOptions()


class ThenJob(_Strict):
    task: TaskName
    args: Args = Field(default_factory=dict)
    options: TemplateOptions = TemplateOptions()


MAX_BATCH = 1000
MAX_THEN = 100


class BatchBody(_Strict):
    jobs: Annotated[list[MemberJob], Field(max_length=MAX_BATCH)]
    then: Annotated[list[ThenJob], Field(max_length=MAX_THEN)] = Field(default_factory=list)
    name: Name | None = None
    tenant: Name | None = None


class AppendBody(_Strict):
    jobs: Annotated[list[MemberJob], Field(min_length=1, max_length=MAX_BATCH)]


class ScheduleBody(_Strict):
    task: TaskName
    cron: Annotated[str, Field(min_length=1, max_length=200)]
    args: Args = Field(default_factory=dict)
    timezone: Annotated[str, Field(min_length=1, max_length=200)] = "UTC"
    unique: bool = False
    options: TemplateOptions = TemplateOptions()
    description: Annotated[str, Field(max_length=1000)] | None = None


class PauseBody(_Strict):
    """A scope: both ``None`` is everything; see ``offload.job.Pause``."""

    tenant: Name | None = None
    queue: Name | None = None


class RetryAllBody(_Strict):
    """The dead jobs to run again: all of them, or those of a task, queue or tenant."""

    task: Name | None = None
    queue: Name | None = None
    tenant: Name | None = None
    limit: Annotated[int, Field(ge=1, le=10_000)] = 10_000


class PurgeBody(_Strict):
    older_than: Annotated[float, Field(ge=0, le=MAX_SECONDS)] = 0.0


def validated(model: type[_Strict], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                  for e in exc.errors()]  # fmt: skip
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Problem(422, f"invalid body: {detail}", kind="invalid-body", errors=errors) from None
