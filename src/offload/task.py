"""Tasks: registered units of work, their typed payloads and enqueue options.

A task's payload type comes from its signature (``@app.task``) or from its command
class (``@app.handler(Cmd)``). Arguments are validated strictly when enqueued, so
the caller sees a wrong type at once and nothing is stored, and again before
execution, so a job written by older code or by hand cannot reach the function
with the wrong shape.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    TypedDict,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)  # fmt: skip

import pydantic
import pydantic_core
from typing_extensions import ParamSpec, Unpack
from uuid_utils import uuid7

from offload.dependencies import parent_ids
from offload.depends import Resolver, dependency_params
from offload.errors import (
    CheckpointError,
    ConfigurationError,
    PayloadError,
    PayloadTooLargeError,
    SerializationError,
)  # fmt: skip
from offload.job import DEFAULT_QUEUE, DEFAULT_TENANT, Job, JobContext, JobContextOf, NewJob
from offload.limits import RateSpec, parse_limits
from offload.retry import DEFAULT_RETRY, DelayFunction, RetryPolicy
from offload.serializer import JSON
from offload.validation import (
    check_attempts,
    check_finite_arguments,
    check_job_fields,
    check_name,
    check_priority,
    check_timeout,
)

if TYPE_CHECKING:
    from offload.app import App

R = TypeVar("R")
# The arguments a caller passes at enqueue (the job context excluded). It
# defaults to "any arguments", so ``Task[Any]`` and ``Task[str]`` stay valid
# spellings for a task whose arguments are not tracked.
P = ParamSpec("P", default=...)

ParentPolicy = Literal["cancel", "run"]
"""What a parent that ends dead or cancelled does to its dependents."""

RetrySpec = RetryPolicy | Sequence[float] | DelayFunction | None


def as_retry_policy(spec: RetrySpec) -> RetryPolicy:
    if spec is None:
        return DEFAULT_RETRY
    if isinstance(spec, RetryPolicy):
        return spec
    if callable(spec):
        return RetryPolicy(delay=spec)
    return RetryPolicy(delays=tuple(spec))


@dataclass(frozen=True, slots=True)
class Options:
    """Per-enqueue settings; ``None`` means the task's default."""

    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    delay: float = 0.0
    run_at: datetime | None = None
    tenant: str = DEFAULT_TENANT
    unique_key: str | None = None
    batch_id: str | None = None
    depends_on: Sequence[Job | NewJob | str] = ()
    on_parent_failure: ParentPolicy = "cancel"


class EnqueueOptions(TypedDict, total=False):
    """The keywords of ``task.options(...)`` and ``app.dispatch(...)``; omitted
    ones keep the task's default (or the value bound before)."""

    queue: str | None
    priority: int | None
    max_attempts: int | None
    timeout: float | None
    delay: float
    run_at: datetime | None
    tenant: str
    unique_key: str | None
    batch_id: str | None
    depends_on: Sequence[Job | NewJob | str]
    on_parent_failure: ParentPolicy


class Payload:
    """How a task's arguments become bytes and back (strategy per task style)."""

    def encode(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        raise NotImplementedError

    def encode_from_json(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """Arguments that arrived as JSON (CLI, HTTP), validated in JSON mode, where
        an ISO string is a datetime and a string a UUID, as a JSON client sends them."""
        raise NotImplementedError


class SignaturePayload(Payload):
    """Keyword arguments checked against a model built from the function's hints."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.signature = inspect.signature(fn)
        try:
            hints = get_type_hints(fn)
        except NameError as exc:
            raise ConfigurationError(
                f"task {name!r}: cannot resolve the annotation {exc.name!r}; define the type "
                "at module level so the payload can be validated"
            ) from exc
        self.ctx_param: str | None = None
        # Dependencies are the worker's to supply (offload.depends): never payload.
        self.dependencies = dependency_params(fn, _hints(fn, extras=True))
        fields: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ConfigurationError(f"task {name!r}: *args/**kwargs cannot be typed payloads")
            hint = hints.get(param.name, Any)
            if _is_context(hint):
                self.ctx_param = param.name
                continue
            if param.name in self.dependencies:
                continue
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (hint, default)
        # Positional arguments map onto these names (the context excluded, so one
        # can never land in its slot); precomputed because Signature.bind costs
        # more than validation itself on the bulk enqueue path.
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.positional = tuple(
            p.name for p in self.signature.parameters.values()
            if p.kind in kinds and p.name != self.ctx_param and p.name not in self.dependencies
        )  # fmt: skip
        self.name = name
        self.model = pydantic.create_model(
            f"{name}.args", __config__=pydantic.ConfigDict(extra="forbid", strict=True), **fields
        )

    def _refuse_injected(self, kwargs: dict[str, Any]) -> None:
        if self.ctx_param is not None and self.ctx_param in kwargs:
            raise PayloadError(f"{self.ctx_param!r} is the job context; the worker passes it")
        for key in kwargs:
            if key in self.dependencies:
                raise PayloadError(f"{key!r} is a dependency (Depends); the worker resolves it")

    def encode(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        self._refuse_injected(kwargs)
        bound = self._bind(args, kwargs) if args else kwargs
        model = _validate(self.model, bound)
        return _to_json(self.name, bound, lambda: self.model.__pydantic_serializer__.to_json(model))

    def encode_from_json(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        self._refuse_injected(kwargs)
        bound = self._bind(args, kwargs) if args else kwargs
        model = _validate_json(self.model, _json_bytes(bound))
        data: bytes = self.model.__pydantic_serializer__.to_json(model)
        return data

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > len(self.positional):
            raise PayloadError(
                f"too many positional arguments for {self.name}: it takes "
                f"{len(self.positional)}, {len(args)} given"
            )
        bound = dict(zip(self.positional, args, strict=False))
        for key in kwargs:
            if key in bound:
                raise PayloadError(f"{self.name} got multiple values for argument {key!r}")
        bound.update(kwargs)
        return bound

    def decode(self, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        model = _validate_json(self.model, data)
        return (), {name: getattr(model, name) for name in type(model).model_fields}


class CommandPayload(Payload):
    """One typed command object (``001_…``'s background commands)."""

    def __init__(self, command_type: type[Any]) -> None:
        self.command_type = command_type
        self.adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(command_type)

    def encode(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        command = self._one(args, kwargs)
        if not isinstance(command, self.command_type):
            command = _validate(self.adapter, command)
        name = self.command_type.__name__
        return _to_json(name, {"command": command}, lambda: self.adapter.dump_json(command))

    def encode_from_json(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        command = self._one(args, kwargs)
        return self.adapter.dump_json(_validate_json(self.adapter, _json_bytes(command)))

    def _one(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if len(args) == 1 and not kwargs:
            return args[0]
        if not args:
            return kwargs
        raise PayloadError(f"a {self.command_type.__name__} command takes one argument")

    def decode(self, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (_validate_json(self.adapter, data),), {}


def _to_json(task: str, arguments: Mapping[str, Any], encode: Callable[[], bytes]) -> bytes:
    """Encoded arguments, or a ``PayloadError`` naming the first argument JSON
    cannot hold (a value typed ``Any`` passes validation whatever it is)."""
    try:
        return encode()
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
        culprit = next((k for k, v in arguments.items() if not _encodes(v)), None)
        which = f"argument {culprit!r}" if culprit is not None else "an argument"
        raise PayloadError(
            f"invalid arguments for {task}: {which} cannot be stored as JSON: {exc}"
        ) from None


def _encodes(value: Any) -> bool:
    try:
        pydantic_core.to_json(value)
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        return False
    return True


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value).encode()
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"arguments are not JSON: {exc}") from None


def _validate(validator: Any, value: Any) -> Any:
    try:
        if isinstance(validator, pydantic.TypeAdapter):
            return validator.validate_python(value, strict=True)
        return validator.model_validate(value)
    except pydantic.ValidationError as exc:
        raise PayloadError(_describe(exc)) from exc


def _validate_json(validator: Any, data: bytes) -> Any:
    try:
        if isinstance(validator, pydantic.TypeAdapter):
            return validator.validate_json(data)
        return validator.model_validate_json(data)
    except pydantic.ValidationError as exc:
        raise PayloadError(_describe(exc)) from exc


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return f"invalid arguments for {exc.title}: " + "; ".join(parts)


class Task(Generic[R, P]):
    """A registered function or command handler, known by a stable ``name``.

    ``R`` is what ``result_of`` returns, ``P`` the arguments ``enqueue`` takes;
    ``@app.task`` and ``@app.handler`` infer both from the function (see
    ``offload.decorators`` for how the job context is left out of ``P``).
    """

    def __init__(
        self,
        app: App,
        fn: Callable[..., Any],
        name: str,
        payload: Payload,
        *,
        queue: str = DEFAULT_QUEUE,
        max_attempts: int = 3,
        timeout: float | None = None,
        priority: int = 0,
        retry: RetrySpec = None,
        concurrency_limit: int | None = None,
        rate_limit: RateSpec = None,
        limit_key: str | None = None,
        error: Any = None,
        checkpoint: Any = None,
        dead_letter: bool = True,
    ) -> None:
        _check_defaults(name, queue, max_attempts, timeout, priority)
        self.app = app
        self.fn = fn
        self.name = name
        self.payload = payload
        self.queue = queue
        self.max_attempts = max_attempts
        # False: a job out of attempts is discarded (ends cancelled) instead of dead.
        self.dead_letter = dead_letter
        self.timeout = timeout
        self.priority = priority
        self.retry = as_retry_policy(retry)
        self.limits = parse_limits(name, concurrency_limit, rate_limit, limit_key)
        self.is_async = inspect.iscoroutinefunction(fn)
        hints = _hints(fn)
        self.ctx_param = getattr(payload, "ctx_param", None) or _ctx_param(hints)
        returns = hints.get("return", Any)
        if isinstance(returns, str):
            returns = Any
        self.result_adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(returns)
        # The typed error the task may raise with TaskFailure (WithError of 002).
        self.error_type = error
        self.error_adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(
            Any if error is None else error
        )
        # The checkpoint's declared type (ExecutionMetadata of 002): validated on resume.
        self.checkpoint_type = checkpoint
        self.checkpoint_adapter: pydantic.TypeAdapter[Any] | None = (
            None if checkpoint is None else pydantic.TypeAdapter(checkpoint)
        )
        self.dependencies: dict[str, Resolver] = getattr(
            payload, "dependencies", None
        ) or dependency_params(fn, _hints(fn, extras=True))
        # The last options checked and what they gave (see ``_fields_for``).
        self._last_fields: tuple[Options, tuple[Any, ...], dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, in-process (handy in tests)."""
        return self.fn(*args, **kwargs)

    # building jobs ----------------------------------------------------------------

    def new_job(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Options | None = None,
        *,
        from_json: bool = False,
    ) -> NewJob:
        """A validated job to store; ``from_json`` for arguments that came as JSON
        (CLI, HTTP), validated in JSON mode (ISO strings are datetimes...)."""
        o = options or _DEFAULT_OPTIONS
        job = self._fields_for(o)
        check_finite_arguments(self.name, getattr(self.payload, "positional", ()), args, kwargs)
        if from_json:
            data = self.payload.encode_from_json(args, kwargs)
        else:
            data = self.payload.encode(args, kwargs)
        if self.app.serializer is not JSON:
            data = self.app.serializer.dumps(JSON.loads(data))
        limit = self.app.settings.max_payload_bytes
        if len(data) > limit:
            raise PayloadTooLargeError(
                f"payload of {self.name!r} is {len(data)} bytes; the limit is {limit}"
            )
        return NewJob(id=str(uuid7()), task=self.name, payload=data, **job)

    def _fields_for(self, o: Options) -> dict[str, Any]:
        """``_checked_fields``, checked once for a run of jobs with the same
        options: a bulk enqueue passes one ``Options`` for every item, and the
        check was a third of the Python cost of a job. Options are frozen; the
        task's defaults are part of the key since they are plain attributes, and
        dependencies (a caller's sequence) are never reused."""
        defaults = (self.queue, self.priority, self.max_attempts, self.timeout)
        last = self._last_fields
        if last is not None and last[0] is o and last[1] == defaults:
            return last[2]
        fields = self._checked_fields(o)
        if not o.depends_on:
            self._last_fields = (o, defaults, fields)
        return fields

    def _checked_fields(self, o: Options) -> dict[str, Any]:
        """The options merged with the task's defaults, checked by the same rules
        as every other entry point (``offload.validation``)."""
        fields: dict[str, Any] = dict(
            queue=self.queue if o.queue is None else o.queue, tenant=o.tenant,
            priority=self.priority if o.priority is None else o.priority,
            max_attempts=self.max_attempts if o.max_attempts is None else o.max_attempts,
            timeout=self.timeout if o.timeout is None else o.timeout,
            delay=o.delay, run_at=o.run_at, unique_key=o.unique_key, batch_id=o.batch_id,
            depends_on=parent_ids(o.depends_on), on_parent_failure=o.on_parent_failure,
        )  # fmt: skip
        # Dependencies are checked against the store at enqueue (offload.dependencies).
        deps = ("depends_on", "on_parent_failure")
        check_job_fields(task=self.name, **{k: v for k, v in fields.items() if k not in deps})
        return fields

    def decode_payload(self, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments for a run, validated again; raises ``PayloadError`` or
        ``SerializationError`` for a payload that cannot run."""
        if self.app.serializer is not JSON:
            data = JSON.dumps(self.app.serializer.loads(data))
        return self.payload.decode(data)

    def encode_checkpoint(self, value: Any) -> bytes:
        """The checkpoint as stored: the declared model in JSON mode, else as given."""
        if self.checkpoint_adapter is not None:
            value = self.checkpoint_adapter.dump_python(value, mode="json")
        return self.app.serializer.dumps(value)

    def decode_checkpoint(self, data: bytes) -> Any:
        """The stored checkpoint for a resumed run, validated into the declared
        type; one that no longer fits raises ``CheckpointError``."""
        try:
            value = self.app.serializer.loads(data)
        except SerializationError as exc:
            raise CheckpointError(f"checkpoint of {self.name!r} cannot be decoded: {exc}") from exc
        if self.checkpoint_adapter is None:
            return value
        try:
            return self.checkpoint_adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise CheckpointError(
                f"checkpoint of {self.name!r} no longer fits {_type_name(self.checkpoint_type)}: "
                + _describe(exc).split(": ", 1)[-1]
            ) from exc

    def encode_result(self, value: Any) -> bytes | None:
        if value is None:
            return None
        plain = self.result_adapter.dump_python(value, mode="json")
        return self.app.serializer.dumps(plain)

    def encode_error(self, value: Any) -> Any:
        """A TaskFailure's value as JSON data; one that does not fit the declared
        error type is stored as given, so the failure itself is never lost."""
        try:
            return self.error_adapter.dump_python(value, mode="json")
        except (pydantic.ValidationError, pydantic_core.PydanticSerializationError, TypeError):
            return pydantic.TypeAdapter(Any).dump_python(value, mode="json", fallback=repr)

    def error_of(self, job: Job) -> Any:
        """The job's typed error (``None`` when it has none): the declared
        ``error`` type validated from what was stored."""
        if job.error is None or job.error.data is None:
            return None
        return self.error_adapter.validate_python(job.error.data)

    def result_of(self, job: Job) -> R:
        """The job's result as the task's declared return type."""
        value: R = self.result_adapter.validate_python(job.result)
        return value

    # enqueueing ------------------------------------------------------------------

    def options(self, **options: Unpack[EnqueueOptions]) -> BoundTask[R, P]:
        """Enqueue with other settings: queue, priority, delay, run_at, tenant,
        unique_key, max_attempts, timeout, batch_id, and ``depends_on`` (jobs or
        ids to wait for) with ``on_parent_failure`` ("cancel" or "run")."""
        return BoundTask(self, Options(**options))

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        return await BoundTask(self, _DEFAULT_OPTIONS).enqueue_async(*args, **kwargs)

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> NewJob:
        """A validated job not yet stored: a member or continuation of a batch
        (``app.batch_async([send.prepare("a@b.c")], then=[report.prepare()])``)."""
        return self.new_job(args, kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        return self.app._store_new_sync([self.new_job(args, kwargs)])[0]

    async def enqueue_many_async(self, items: Iterable[Any]) -> list[Job]:
        """Many jobs in one round trip; items are not checked by the type
        checker (see ``BoundTask.enqueue_many_async``), only at run time."""
        return await BoundTask(self, _DEFAULT_OPTIONS).enqueue_many_async(items)

    def enqueue_many(self, items: Iterable[Any]) -> list[Job]:
        return self.app._store_new_sync([self.new_job(*_split(item)) for item in items])


@dataclass(frozen=True, slots=True)
class BoundTask(Generic[R, P]):
    """A task with enqueue options bound: ``task.options(queue="high")``."""

    task: Task[R, P]
    opts: Options

    def options(self, **options: Unpack[EnqueueOptions]) -> BoundTask[R, P]:
        return BoundTask(self.task, replace(self.opts, **options))

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> NewJob:
        """A validated job not yet stored: a member or continuation of a batch."""
        return self.task.new_job(args, kwargs, self.opts)

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        new = self.task.new_job(args, kwargs, self.opts)
        return (await self.task.app._store_new([new]))[0]

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Stored from this thread where the backend allows it
        (``App._store_new_sync``), not through the bridge loop."""
        new = self.task.new_job(args, kwargs, self.opts)
        return self.task.app._store_new_sync([new])[0]

    async def enqueue_many_async(self, items: Iterable[Any]) -> list[Job]:
        """Each item is a tuple of positional arguments, a mapping of keyword
        arguments, or (for a command handler) the command itself; one round trip.
        A ParamSpec cannot describe such items, so they are typed ``Any`` and
        checked at run time, item by item, before anything is stored."""
        new = [self.task.new_job(*_split(item), self.opts) for item in items]
        return await self.task.app._store_new(new)

    def enqueue_many(self, items: Iterable[Any]) -> list[Job]:
        new = [self.task.new_job(*_split(item), self.opts) for item in items]
        return self.task.app._store_new_sync(new)


def _check_defaults(
    name: str, queue: str, max_attempts: int, timeout: float | None, priority: int
) -> None:
    """A task's own defaults are set up once, in code: a bad one is a
    ``ConfigurationError`` at registration, not an error at every enqueue."""
    try:
        check_name("task name", name, limit=500)
        check_name("queue", queue)
        check_attempts(max_attempts)
        check_timeout(timeout)
        check_priority(priority)
    except PayloadError as exc:
        raise ConfigurationError(f"task {name!r}: {exc}") from None


def _split(item: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(item, tuple):
        return item, {}
    if isinstance(item, Mapping):
        return (), dict(item)
    return (item,), {}


def _hints(fn: Callable[..., Any], *, extras: bool = False) -> dict[str, Any]:
    """Resolved annotations; a handler defined inside a function may name local
    types that cannot be resolved later, so fall back to the raw strings."""
    try:
        return get_type_hints(fn, include_extras=extras)
    except NameError:
        return dict(inspect.get_annotations(fn))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", repr(tp))


def _ctx_param(hints: dict[str, Any]) -> str | None:
    for name, hint in hints.items():
        if _is_context(hint):
            return name
    return None


def _is_context(hint: Any) -> bool:
    """``JobContext``, ``JobContext | None`` or the unresolved string of either."""
    if hint is JobContext or get_origin(hint) is JobContextOf:
        return True
    if isinstance(hint, str):
        bare = hint.replace(" ", "")
        return bare.startswith(("JobContext", "offload.JobContext")) or bare in {
            "Optional[JobContext]",
        }  # fmt: skip
    return any(a is JobContext or get_origin(a) is JobContextOf for a in get_args(hint))


_DEFAULT_OPTIONS = Options()

__all__ = [
    "JSON",
    "BoundTask",
    "CommandPayload",
    "EnqueueOptions",
    "Options",
    "SignaturePayload",
    "Task",
]
