"""The App: task registry, settings, and the wiring of backend and serializer.

Backends hold connections that belong to one event loop, so the App keeps one
backend instance per loop (``clone`` of the first): async callers use the one of
their own loop, sync callers the bridge's (``offload._sync``).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from offload._sync import run_sync
from offload.backends import Backend, create_backend
from offload.errors import DuplicateTaskError, JobNotFoundError, UnknownTaskError
from offload.job import Event, Job, JobQuery, NewJob
from offload.middleware import Middleware, MiddlewareChain
from offload.serializer import JSON, Serializer
from offload.settings import Settings, load_settings
from offload.task import CommandPayload, Options, RetrySpec, SignaturePayload, Task

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


class App:
    """Entry point: ``App("sqlite:///offload.db")``; ``App()`` reads
    ``OFFLOAD_BACKEND_URL`` and falls back to the SQLite file."""

    def __init__(
        self,
        backend_url: str | None = None,
        *,
        serializer: Serializer = JSON,
        middleware: Sequence[Middleware] = (),
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.backend_url = backend_url or self.settings.backend_url
        self.serializer = serializer
        self.middleware = MiddlewareChain(middleware)
        self.tasks: dict[str, Task[Any]] = {}
        self._prototype = create_backend(self.backend_url)
        self._backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Backend] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<App {self._prototype.describe()} tasks={len(self.tasks)}>"

    # registry -------------------------------------------------------------------

    @overload
    def task(self, fn: F, /) -> Task[Any]: ...

    @overload
    def task(
        self, fn: None = None, /, *, name: str | None = None, queue: str = "default",
        max_attempts: int = 3, timeout: float | None = None, priority: int = 0,
        retry: RetrySpec = None,
    ) -> Callable[[F], Task[Any]]: ...  # fmt: skip

    def task(self, fn: Any = None, /, **options: Any) -> Any:
        """Register a sync or async function as a task."""

        def register(func: Callable[..., Any]) -> Task[Any]:
            name = options.pop("name", None) or f"{func.__module__}.{func.__qualname__}"
            return self._register(Task(self, func, name, SignaturePayload(func, name), **options))

        return register(fn) if fn is not None else register

    def handler(
        self, command_type: type[C], *, name: str | None = None, **options: Any
    ) -> Callable[[F], Task[Any]]:
        """Register the handler of a command class (pydantic model or dataclass)."""

        def register(func: F) -> Task[Any]:
            task_name = name or f"{command_type.__module__}.{command_type.__qualname__}"
            task: Task[Any] = Task(self, func, task_name, CommandPayload(command_type), **options)
            return self._register(task)

        return register

    def _register(self, task: Task[Any]) -> Task[Any]:
        existing = self.tasks.get(task.name)
        if existing is not None and existing.fn is not task.fn:
            raise DuplicateTaskError(f"a different function is already registered as {task.name!r}")
        self.tasks[task.name] = task
        return task

    def get_task(self, name: str) -> Task[Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTaskError(f"no task is registered as {name!r}") from None

    def _command_task(self, command: Any) -> Task[Any]:
        for task in self.tasks.values():
            payload = task.payload
            if isinstance(payload, CommandPayload) and type(command) is payload.command_type:
                return task
        raise UnknownTaskError(f"no handler is registered for {type(command).__qualname__}")

    # backend --------------------------------------------------------------------

    async def backend(self) -> Backend:
        """This event loop's backend instance, opened on first use."""
        loop = asyncio.get_running_loop()
        backend = self._backends.get(loop)
        if backend is None:
            with self._lock:
                backend = self._backends.get(loop)
                if backend is None:
                    backend = self._prototype if not self._backends else self._prototype.clone()
                    self._backends[loop] = backend
            await backend.open()
        return backend

    async def close_async(self) -> None:
        """Close this loop's backend instance."""
        backend = self._backends.pop(asyncio.get_running_loop(), None)
        if backend is not None:
            await backend.close()

    def use_backend(self, url: str) -> None:
        """Point the app at another backend (``--backend`` on the CLI); only
        before it has been used, since open instances would keep the old one."""
        if self._backends:
            raise RuntimeError("use_backend() must be called before the app is used")
        self.backend_url = url
        self._prototype = create_backend(url)

    # enqueue and read -------------------------------------------------------------

    async def enqueue_new_async(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Store prepared jobs through the middleware in one round trip."""
        if self.middleware.has("before_enqueue"):
            jobs = [await self.middleware.before_enqueue(j) for j in jobs]
        stored = await (await self.backend()).job_enqueue_many(jobs)
        for job in stored:
            job.serializer = self.serializer
        if self.middleware.has("after_enqueue"):
            for job in stored:
                await self.middleware.after_enqueue(job)
        return stored

    async def dispatch_async(self, command: Any, **options: Any) -> Job:
        """Enqueue a command object for its registered handler."""
        task = self._command_task(command)
        new = task.new_job((command,), {}, Options(**options))
        return (await self.enqueue_new_async([new]))[0]

    def dispatch(self, command: Any, **options: Any) -> Job:
        return run_sync(self.dispatch_async(command, **options))

    async def get_job_async(self, job_id: str, tenant: str | None = None) -> Job:
        job = await (await self.backend()).job_get(job_id, tenant)
        if job is None:
            raise JobNotFoundError(f"no job {job_id!r}")
        job.serializer = self.serializer
        return job

    def get_job(self, job_id: str, tenant: str | None = None) -> Job:
        return run_sync(self.get_job_async(job_id, tenant))

    async def list_jobs_async(self, query: JobQuery) -> list[Job]:
        jobs = await (await self.backend()).job_list(query)
        for job in jobs:
            job.serializer = self.serializer
        return jobs

    async def events_async(self, job_id: str, after: int = 0) -> list[Event]:
        return await (await self.backend()).event_list(job_id, after)

    async def cancel_async(self, job_id: str, tenant: str | None = None) -> Job:
        job = await (await self.backend()).job_cancel(job_id, tenant)
        if job is None:
            raise JobNotFoundError(f"no job {job_id!r}")
        return job

    def cancel(self, job_id: str, tenant: str | None = None) -> Job:
        return run_sync(self.cancel_async(job_id, tenant))

    async def retry_async(self, job_id: str, tenant: str | None = None) -> Job | None:
        """Re-drive a dead or cancelled job; ``None`` if it is in another state."""
        backend = await self.backend()
        if await backend.job_get(job_id, tenant) is None:
            raise JobNotFoundError(f"no job {job_id!r}")
        return await backend.job_redrive(job_id, tenant)

    def retry(self, job_id: str, tenant: str | None = None) -> Job | None:
        return run_sync(self.retry_async(job_id, tenant))
