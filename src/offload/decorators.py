"""The typed faces of ``@app.task`` and ``@app.handler(Cmd)``.

A task is typed by its function: ``Task[R, P]`` where ``R`` is the return type
(awaited, for an async function) and ``P`` the parameters a caller passes at
enqueue. The job context is not one of them, the worker passes it, and a
ParamSpec can only drop parameters from the front (``Concatenate``). Hence the
rule, in the order the overloads below try it:

* no ``JobContext`` parameter, or ``ctx: JobContext`` FIRST: enqueue is checked
  exactly, names, types, defaults and all;
* ``ctx`` after one, two or three other positional parameters (the older
  ``send(to, ctx)`` spelling): the result type is kept, the arguments are
  ``...`` (unchecked by the type checker, still validated at run time), since
  typing them without ``ctx`` would lose their names and reject ``to=...``;
* anywhere else (keyword-only, fifth or later): the type checker sees ``ctx``
  as an argument the caller must pass; move it first.

A function whose first parameter accepts a ``JobContext`` without being one
(``object``, ``Any``) is taken for the ctx-first form; such parameters do not
make good payloads anyway.

Overloads that overlap ("first parameter is a JobContext" and "second one is")
are ordered most-specific first, which is how both mypy and pyright pick.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, TypedDict, TypeVar, overload

from typing_extensions import ParamSpec, Unpack

from offload.job import JobContext
from offload.limits import RateSpec
from offload.task import CommandPayload, RetrySpec, SignaturePayload, Task

if TYPE_CHECKING:
    from offload.app import App

# Without a default, unlike ``offload.task.P``: a defaulted ParamSpec may not
# precede the TypeVars that follow it in these signatures.
Q = ParamSpec("Q")
R = TypeVar("R")
C = TypeVar("C")
A1 = TypeVar("A1")
A2 = TypeVar("A2")
A3 = TypeVar("A3")

Async = Coroutine[Any, Any, R]


class TaskSettings(TypedDict, total=False):
    """The settings of ``@app.task(...)`` and ``@app.handler(Cmd, ...)``, besides
    ``name``; omitted ones take ``Task``'s defaults."""

    queue: str
    max_attempts: int
    timeout: float | None
    priority: int
    retry: RetrySpec
    concurrency_limit: int | None
    rate_limit: RateSpec
    limit_key: str | None
    error: Any
    checkpoint: Any
    dead_letter: bool


class TaskDecorator:
    """``app.task``: use it bare (``@app.task``) or with settings
    (``@app.task(queue="high")``, which returns another ``TaskDecorator``)."""

    def __init__(self, app: App, name: str | None, settings: TaskSettings) -> None:
        self._app = app
        self._name = name
        self._settings = settings

    @overload
    def __call__(
        self, fn: None = None, /, *, name: str | None = None, **settings: Unpack[TaskSettings]
    ) -> TaskDecorator: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[Concatenate[JobContext, Q], Async[R]], /
    ) -> Task[R, Q]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[Concatenate[JobContext, Q], R], /
    ) -> Task[R, Q]: ...
    @overload
    def __call__(
        self,
        fn: Callable[Concatenate[A1, JobContext, Q], Async[R]]
        | Callable[Concatenate[A1, A2, JobContext, Q], Async[R]]
        | Callable[Concatenate[A1, A2, A3, JobContext, Q], Async[R]],
        /,
    ) -> Task[R]: ...
    @overload
    def __call__(
        self,
        fn: Callable[Concatenate[A1, JobContext, Q], R]
        | Callable[Concatenate[A1, A2, JobContext, Q], R]
        | Callable[Concatenate[A1, A2, A3, JobContext, Q], R],
        /,
    ) -> Task[R]: ...
    @overload
    def __call__(self, fn: Callable[Q, Async[R]], /) -> Task[R, Q]: ...
    @overload
    def __call__(self, fn: Callable[Q, R], /) -> Task[R, Q]: ...

    def __call__(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        **settings: Unpack[TaskSettings],
    ) -> Any:
        bound = TaskDecorator(self._app, name or self._name, {**self._settings, **settings})
        return bound if fn is None else bound._register(fn)

    def _register(self, fn: Callable[..., Any]) -> Task[Any]:
        name = self._name or f"{fn.__module__}.{fn.__qualname__}"
        payload = SignaturePayload(fn, name)
        return self._app._register(Task(self._app, fn, name, payload, **self._settings))


class HandlerDecorator(Generic[C]):
    """``app.handler(Cmd)``: the handler takes the command (and may take the job
    context second); the task enqueues a ``Cmd``, or a mapping validated into
    one, and ``result_of`` has the handler's return type."""

    def __init__(
        self, app: App, command_type: type[C], name: str | None, settings: TaskSettings
    ) -> None:
        self._app = app
        self._command_type = command_type
        self._name = name
        self._settings = settings

    @overload
    def __call__(
        self, fn: Callable[[C], Async[R]] | Callable[[C, JobContext], Async[R]], /
    ) -> Task[R, [C | Mapping[str, Any]]]: ...
    @overload
    def __call__(
        self, fn: Callable[[C], R] | Callable[[C, JobContext], R], /
    ) -> Task[R, [C | Mapping[str, Any]]]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Any:
        command = self._command_type
        name = self._name or f"{command.__module__}.{command.__qualname__}"
        payload = CommandPayload(command)
        return self._app._register(Task(self._app, fn, name, payload, **self._settings))
