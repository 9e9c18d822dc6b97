"""The App: task registry, settings, and the wiring of backend and serializer.

Backends hold connections that belong to one event loop, so the App keeps one
backend instance per loop (``clone`` of the first): async callers use the one of
their own loop, sync callers the bridge's (``offload._sync``).

Over 600 lines on purpose: it is the public surface in one place, and every
``*_async`` method has its typed one-line sync twin beside it; the logic behind
each call lives in its own module (batch, dependencies, workflow, stats, status).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import weakref
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Unpack

from offload._sync import close_at_exit, is_bridge, run_now, run_sync
from offload.backends import Backend, create_backend
from offload.backends.base import ThreadStore
from offload.decorators import HandlerDecorator, TaskDecorator, TaskSettings
from offload.errors import (
    BatchFinishedError,
    DuplicateTaskError,
    JobEndedError,
    JobNotFoundError,
    LimitError,
    NotFoundError,
    UnknownTaskError,
    UsageError,
)
from offload.grouping import EnqueueGroup
from offload.ids import new_id
from offload.job import (
    DEFAULT_TENANT,
    DISCARD_META,
    Batch,
    CancelOutcome,
    Event,
    Job,
    JobQuery,
    NewBatch,
    NewJob,
    Pause,
    Schedule,
    WorkerInfo,
)
from offload.lifecycle import EventKind
from offload.middleware import Middleware, MiddlewareChain
from offload.serializer import JSON, Serializer
from offload.settings import Settings, load_settings
from offload.stats import Stats
from offload.stats import collect as collect_stats
from offload.status import CursorStore, StatusCallback, StatusFollower
from offload.task import CommandPayload, EnqueueOptions, Options, Task
from offload.validation import (
    check_attempts,
    check_name,
    check_new_job,
    check_priority,
    check_timeout,
    is_storable_name,
)

if TYPE_CHECKING:
    from offload.workflow import Graph, Step, Workflow

C = TypeVar("C")

# Thread stores a forked child found made by its parent: held so that nothing
# closes their connections in the child (``App._direct_store``).
_INHERITED: list[ThreadStore | None] = []

# ``App(lifespan=...)``: entered once per worker process around all its jobs;
# what it yields is ``ctx.state`` in every job (and so in dependencies).
Lifespan = Callable[["App"], AbstractAsyncContextManager[Any]]


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
        lifespan: Lifespan | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.lifespan = lifespan
        self.status_followers: list[StatusFollower] = []
        self.backend_url = backend_url or self.settings.backend_url
        self.serializer = serializer
        self.middleware = MiddlewareChain(middleware)
        self.tasks: dict[str, Task[Any]] = {}
        self._prototype = create_backend(self.backend_url)
        self._backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Backend] = (
            weakref.WeakKeyDictionary()
        )
        self._open: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        # Per backend instance, so per loop: concurrent enqueues share calls.
        self._groups: weakref.WeakKeyDictionary[Backend, EnqueueGroup] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        # Sync enqueues store from the caller's thread through it, when the
        # backend has one (``Backend.thread_store``); made on first use.
        self._thread_store: ThreadStore | None = None
        self._thread_store_made = False
        self._thread_store_pid = 0

    def __repr__(self) -> str:
        return f"<App {self._prototype.describe()} tasks={len(self.tasks)}>"

    def describe(self) -> dict[str, Any]:
        """Facts about the backend for humans (CLI, dashboard); never secrets."""
        return self._prototype.describe()

    # registry -------------------------------------------------------------------

    @property
    def task(self) -> TaskDecorator:
        """Register a sync or async function as a task: ``@app.task`` or
        ``@app.task(queue="high", max_attempts=5, ...)``. The task is typed by the
        function; put ``ctx: JobContext`` first for checked enqueue arguments
        (``offload.decorators`` says why)."""
        return TaskDecorator(self, None, {})

    def handler(
        self, command_type: type[C], /, *, name: str | None = None, **settings: Unpack[TaskSettings]
    ) -> HandlerDecorator[C]:
        """Register the handler of a command class (pydantic model or dataclass)."""
        return HandlerDecorator(self, command_type, name, settings)

    def _register(self, task: Task[Any]) -> Task[Any]:
        existing = self.tasks.get(task.name)
        if existing is not None and existing.fn is not task.fn:
            raise DuplicateTaskError(f"a different function is already registered as {task.name!r}")
        self.tasks[task.name] = task
        return task

    def autodiscover(self, *packages: str, module: str = "tasks") -> list[str]:
        """Import every ``tasks`` module of these packages (Celery's
        ``autodiscover_tasks``), so their ``@app.task`` functions register and a
        worker needs only ``--app``; returns the modules imported."""
        from offload.discovery import autodiscover

        return autodiscover(packages, module)

    def on_status_change(
        self,
        callback: StatusCallback,
        *,
        cursor: CursorStore | None = None,
        tenant: str | None = None,
        kinds: Collection[EventKind] | None = None,
        interval: float = 1.0,
    ) -> StatusFollower:
        """Call ``callback`` (sync or async) with every status change of every job,
        including those made outside the worker (cancel from the API, lease
        expiry): workers follow the event feed, at-least-once, from ``cursor``
        (``offload.status.FileCursor(path)`` to resume after a restart; without
        one, from the start of the feed each time the worker starts)."""
        from offload.status import follow

        return follow(self, callback, cursor=cursor, tenant=tenant, kinds=kinds, interval=interval)

    def get_task(self, name: str) -> Task[Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTaskError(f"no task is registered as {name!r}") from None

    def _command_task(self, command: object) -> Task[Any]:
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
        if backend is not None and loop in self._open:
            return backend
        if backend is None:
            with self._lock:
                backend = self._backends.get(loop)
                if backend is None:
                    backend = self._prototype if not self._backends else self._prototype.clone()
                    self._backends[loop] = backend
                    if is_bridge(loop):
                        close_at_exit(_closer(weakref.ref(self)))
        # Every caller until the first open completes waits for it (the backends
        # serialise concurrent opens): twenty threads making their first sync
        # call at once used to get the instance while it was still opening.
        await backend.open()
        self._open.add(loop)
        return backend

    async def close_async(self) -> None:
        """Close this loop's backend instance, and the connection sync enqueues
        use (opened again by the next one)."""
        self._close_thread_store()
        self._open.discard(asyncio.get_running_loop())
        backend = self._backends.pop(asyncio.get_running_loop(), None)
        if backend is not None:
            await backend.close()

    def close(self) -> None:
        """Close the backend instance that sync calls use."""
        run_sync(self.close_async())

    def _close_thread_store(self) -> None:
        if self._thread_store is not None:
            self._thread_store.close()

    def use_backend(self, url: str) -> None:
        """Point the app at another backend (``--backend`` on the CLI); only
        before it has been used, since open instances would keep the old one."""
        if self._backends or self._thread_store_made:
            raise UsageError("use_backend() must be called before the app is used")
        self.backend_url = url
        self._prototype = create_backend(url)

    # enqueue and read -------------------------------------------------------------

    async def enqueue_new_async(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Store prepared jobs through the middleware in one backend call, which
        concurrent calls of this loop share (``offload.grouping``)."""
        for new in jobs:  # hand-built ones too
            check_new_job(new)
        return await self._store_new(jobs)

    async def _store_new(self, jobs: Sequence[NewJob]) -> list[Job]:
        """``enqueue_new_async`` for jobs ``task.new_job`` built, which checked
        them already: a second check was a tenth of a bulk enqueue's Python."""
        chain = self.middleware
        jobs = [self._marked(j) for j in jobs]
        backend = await self.backend()
        waits = any(j.depends_on for j in jobs)
        if waits:
            from offload import dependencies

            jobs = await dependencies.prepare(backend, jobs)
        prepared = await chain.before_enqueue_call(jobs)
        try:
            stored = await self._enqueue_group(backend).enqueue(prepared)
        except Exception as exc:
            await chain.enqueue_failed(prepared, exc)
            raise
        for job in stored:
            job.serializer = self.serializer
        if waits:
            stored = await self._release_ready(backend, stored)
        await chain.after_enqueue_call(stored)
        return stored

    def _store_new_sync(self, jobs: Sequence[NewJob]) -> list[Job]:
        """``_store_new`` for a caller that blocks until it is done: in the
        caller's own thread through the backend's thread store, when nothing on
        the way needs an event loop (no dependencies to look up, no ``async``
        enqueue hook), else on the bridge loop as every other sync call.

        Plain hooks then run in the caller's thread, so they see its context
        (the current trace span, say)."""
        store = self._direct_store()
        chain = self.middleware
        if store is None or chain.awaits_on_enqueue() or any(j.depends_on for j in jobs):
            return run_sync(self._store_new(jobs))
        marked = [self._marked(j) for j in jobs]
        prepared = run_now(chain.before_enqueue_call(marked))
        try:
            stored = store.enqueue_many(prepared)
        except Exception as exc:
            run_now(chain.enqueue_failed(prepared, exc))
            raise
        for job in stored:
            job.serializer = self.serializer
        run_now(chain.after_enqueue_call(stored))
        return stored

    def _direct_store(self) -> ThreadStore | None:
        pid = os.getpid()
        if self._thread_store_made:
            if self._thread_store_pid == pid:
                return self._thread_store
            # A forked child: the store's connections are the parent's. Kept,
            # never used or closed here (closing would shut the parent's
            # sockets); the child makes its own.
            _INHERITED.append(self._thread_store)
            self._thread_store, self._thread_store_made = None, False
        store = self._prototype.thread_store()  # nothing opened until its first call
        if store is not None:
            # Opening the backend once prepares what the store writes to (the
            # PostgreSQL schema's migrations, say); later calls skip this.
            run_sync(self.backend())
        with self._lock:
            if not self._thread_store_made:
                self._thread_store, self._thread_store_made = store, True
                self._thread_store_pid = pid
        return self._thread_store

    def _enqueue_group(self, backend: Backend) -> EnqueueGroup:
        group = self._groups.get(backend)
        if group is None:
            group = self._groups[backend] = EnqueueGroup(backend)
        return group

    def _marked(self, job: NewJob) -> NewJob:
        """The task's dead-letter choice, kept on the job: lease recovery, which
        knows no tasks, discards a job of such a task whose last lease ran out."""
        task = self.tasks.get(job.task)
        if task is None or task.dead_letter or job.meta.get(DISCARD_META):
            return job
        return dataclasses.replace(job, meta={**job.meta, DISCARD_META: True})

    async def _release_ready(self, backend: Backend, stored: list[Job]) -> list[Job]:
        """Dependents whose parents had all ended before they were stored are
        released now, not at the next sweep; returns the jobs as they are then.
        Only a parent stored before this call can have ended already."""
        from offload import dependencies

        here = {j.id for j in stored}
        batch_ids = {
            j.batch_id for j in stored
            if j.batch_id is not None and any(p not in here for p in j.depends_on)
        }  # fmt: skip
        moved = 0
        for batch_id in sorted(batch_ids):
            moved += await dependencies.advance(backend, batch_id)
        if not moved:
            return stored
        fresh = [await backend.job_get(j.id) for j in stored]
        out = [f if f is not None else j for f, j in zip(fresh, stored, strict=True)]
        for job, asked in zip(out, stored, strict=True):
            job.serializer, job.duplicate = self.serializer, asked.duplicate
        return out

    def enqueue_new(self, jobs: Sequence[NewJob]) -> list[Job]:
        for new in jobs:
            check_new_job(new)
        return self._store_new_sync(jobs)

    async def dispatch_async(self, command: object, **options: Unpack[EnqueueOptions]) -> Job:
        """Enqueue a command object for its registered handler."""
        task = self._command_task(command)
        new = task.new_job((command,), {}, Options(**options))
        return (await self.enqueue_new_async([new]))[0]

    def dispatch(self, command: object, **options: Unpack[EnqueueOptions]) -> Job:
        task = self._command_task(command)
        return self._store_new_sync([task.new_job((command,), {}, Options(**options))])[0]

    async def get_job_async(self, job_id: str, tenant: str | None = None) -> Job:
        if not is_storable_name(job_id):
            raise JobNotFoundError(f"no job {job_id!r}")
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

    def list_jobs(self, query: JobQuery) -> list[Job]:
        return run_sync(self.list_jobs_async(query))

    async def events_async(self, job_id: str, after: int = 0) -> list[Event]:
        return await (await self.backend()).event_list(job_id, after)

    def events(self, job_id: str, after: int = 0) -> list[Event]:
        return run_sync(self.events_async(job_id, after))

    async def cancel_async(self, job_id: str, tenant: str | None = None) -> Job:
        """Cancel a waiting job now, or ask the worker running it to stop it (the
        job comes back ``running`` with ``cancel_requested`` set). Raises
        ``JobEndedError`` when it had already ended, ``JobNotFoundError`` when
        there is no such job (in that tenant)."""
        if not is_storable_name(job_id):
            raise JobNotFoundError(f"no job {job_id!r}")
        answer = await (await self.backend()).job_cancel(job_id, tenant)
        if answer is None:
            raise JobNotFoundError(f"no job {job_id!r}")
        job = answer.job
        job.serializer = self.serializer
        if answer.outcome is CancelOutcome.ENDED:
            raise JobEndedError(f"job {job.id} already ended ({job.state.value})", job)
        if job.batch_id is not None and job.ended:
            await self.settle_batch_async(job.batch_id)
        return job

    def cancel(self, job_id: str, tenant: str | None = None) -> Job:
        return run_sync(self.cancel_async(job_id, tenant))

    async def retry_async(self, job_id: str, tenant: str | None = None) -> Job | None:
        """Re-drive a dead or cancelled job; ``None`` if it is in another state."""
        backend = await self.backend()
        if not is_storable_name(job_id) or await backend.job_get(job_id, tenant) is None:
            raise JobNotFoundError(f"no job {job_id!r}")
        return await backend.job_redrive(job_id, tenant)

    def retry(self, job_id: str, tenant: str | None = None) -> Job | None:
        return run_sync(self.retry_async(job_id, tenant))

    # control: pause and resume ----------------------------------------------------

    async def pause_async(self, *, tenant: str | None = None, queue: str | None = None) -> Pause:
        """Stop leasing everything, one queue, one tenant, or one queue of one
        tenant; workers stop starting such jobs at once, running ones go on."""
        _check_scope(tenant, queue)
        return await (await self.backend()).control_pause(tenant, queue)

    def pause(self, *, tenant: str | None = None, queue: str | None = None) -> Pause:
        return run_sync(self.pause_async(tenant=tenant, queue=queue))

    async def resume_async(self, *, tenant: str | None = None, queue: str | None = None) -> bool:
        """Lift the pause of exactly this scope; ``False`` when it was not paused."""
        return await (await self.backend()).control_resume(tenant, queue)

    def resume(self, *, tenant: str | None = None, queue: str | None = None) -> bool:
        return run_sync(self.resume_async(tenant=tenant, queue=queue))

    async def pauses_async(self, tenant: str | None = None) -> list[Pause]:
        return await (await self.backend()).control_pauses(tenant)

    def pauses(self, tenant: str | None = None) -> list[Pause]:
        return run_sync(self.pauses_async(tenant))

    # schedules ----------------------------------------------------------------------

    async def schedule_async(
        self,
        schedule_id: str,
        task: Task[Any] | str,
        cron: str,
        *,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timezone: str = "UTC",
        unique: bool = False,
        tenant: str = DEFAULT_TENANT,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        from_json: bool = False,
        description: str | None = None,
    ) -> Schedule:
        """Create or replace the schedule ``(tenant, schedule_id)``: a job of
        ``task`` at every firing of ``cron`` (5 fields, or 6 with seconds first) in
        ``timezone``. Arguments are validated now, as at enqueue. ``unique`` skips a
        firing while the job of the previous one has not ended. ``from_json``: the
        arguments came as JSON (CLI, HTTP) and are validated in JSON mode.
        ``description`` is stored for the people reading schedule lists."""
        from offload.schedule import CronRule

        rule = CronRule(cron, timezone)
        found = self.get_task(task) if isinstance(task, str) else task
        _check_schedule(schedule_id, tenant, queue, priority, max_attempts, timeout)
        template = found.new_job(tuple(args), dict(kwargs or {}), from_json=from_json)
        backend = await self.backend()
        await self._check_schedule_room(backend, schedule_id, tenant)
        schedule = Schedule(
            id=schedule_id, task=found.name, payload=template.payload, cron=cron,
            next_run_at=rule.next_after(await backend.now()), tenant=tenant,
            timezone=timezone, queue=queue or found.queue,
            priority=found.priority if priority is None else priority,
            max_attempts=found.max_attempts if max_attempts is None else max_attempts,
            timeout=found.timeout if timeout is None else timeout, unique=unique,
            description=description,
        )  # fmt: skip
        return await backend.schedule_upsert(schedule)

    def schedule(
        self,
        schedule_id: str,
        task: Task[Any] | str,
        cron: str,
        *,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timezone: str = "UTC",
        unique: bool = False,
        tenant: str = DEFAULT_TENANT,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        from_json: bool = False,
        description: str | None = None,
    ) -> Schedule:
        return run_sync(
            self.schedule_async(
                schedule_id,
                task,
                cron,
                args=args,
                kwargs=kwargs,
                timezone=timezone,
                unique=unique,
                tenant=tenant,
                queue=queue,
                priority=priority,
                max_attempts=max_attempts,
                timeout=timeout,
                from_json=from_json,
                description=description,
            )
        )

    async def _check_schedule_room(self, backend: Backend, schedule_id: str, tenant: str) -> None:
        """Replacing a schedule is always allowed; a new one only below the cap."""
        cap = self.settings.max_schedules_per_tenant
        if await backend.schedule_get(schedule_id, tenant) is not None:
            return
        if len(await backend.schedule_list(tenant)) >= cap:
            raise LimitError(
                f"tenant {tenant!r} already has {cap} schedules, the most allowed "
                "(Settings.max_schedules_per_tenant); delete one first"
            )

    async def get_schedule_async(self, schedule_id: str, tenant: str = DEFAULT_TENANT) -> Schedule:
        found = await (await self.backend()).schedule_get(schedule_id, tenant)
        if found is None:
            raise NotFoundError(f"no schedule {schedule_id!r} in tenant {tenant!r}")
        return found

    def get_schedule(self, schedule_id: str, tenant: str = DEFAULT_TENANT) -> Schedule:
        return run_sync(self.get_schedule_async(schedule_id, tenant))

    async def schedules_async(self, tenant: str | None = None) -> list[Schedule]:
        return await (await self.backend()).schedule_list(tenant)

    def schedules(self, tenant: str | None = None) -> list[Schedule]:
        return run_sync(self.schedules_async(tenant))

    async def unschedule_async(self, schedule_id: str, tenant: str = DEFAULT_TENANT) -> bool:
        """Delete the schedule; jobs it already enqueued stay."""
        return await (await self.backend()).schedule_delete(schedule_id, tenant)

    def unschedule(self, schedule_id: str, tenant: str = DEFAULT_TENANT) -> bool:
        return run_sync(self.unschedule_async(schedule_id, tenant))

    # batches --------------------------------------------------------------------------

    async def batch_async(
        self,
        jobs: Sequence[NewJob],
        *,
        then: Sequence[NewJob] = (),
        tenant: str = DEFAULT_TENANT,
        name: str | None = None,
        batch_id: str | None = None,
    ) -> Batch:
        """Create a batch of prepared jobs (``task.prepare(...)``, any queues);
        ``then`` jobs run once, after every job of the batch has ended, with the
        batch's summary in ``ctx.job.meta["batch"]``. Jobs take the batch's tenant."""
        from offload import batch as batches

        check_name("tenant", tenant)
        if name is not None:
            check_name("batch name", name)
        if batch_id is not None:
            check_name("batch_id", batch_id, slash=False)
        backend = await self.backend()
        then = await self.middleware.prepare_continuations(then)
        record = NewBatch(id=batch_id or new_id(), tenant=tenant, name=name,
                          then=batches.encode_then(then))  # fmt: skip
        stored = await backend.batch_create(record)
        if jobs:
            await self.enqueue_new_async(batches.with_batch(jobs, stored.id, tenant))
        else:
            await batches.settle(self, backend, stored.id, empty_ok=True)
        return await self.get_batch_async(stored.id)

    def batch(
        self,
        jobs: Sequence[NewJob],
        *,
        then: Sequence[NewJob] = (),
        tenant: str = DEFAULT_TENANT,
        name: str | None = None,
        batch_id: str | None = None,
    ) -> Batch:
        return run_sync(
            self.batch_async(jobs, then=then, tenant=tenant, name=name, batch_id=batch_id)
        )

    async def batch_append_async(
        self, batch_id: str, jobs: Sequence[NewJob], tenant: str | None = None
    ) -> list[Job]:
        """Add jobs to a batch that has not finished yet; never to one whose
        continuations are being fired at the same time (``batch.guarded``)."""
        from offload import batch as batches

        found = await self.get_batch_async(batch_id, tenant)
        async with batches.guarded(await self.backend(), found.id):
            found = await self.get_batch_async(batch_id, tenant)
            if found.finished_at is not None:
                raise BatchFinishedError(f"batch {batch_id!r} has finished; it takes no more jobs")
            return await self.enqueue_new_async(batches.with_batch(jobs, found.id, found.tenant))

    def batch_append(
        self, batch_id: str, jobs: Sequence[NewJob], tenant: str | None = None
    ) -> list[Job]:
        return run_sync(self.batch_append_async(batch_id, jobs, tenant))

    async def get_batch_async(self, batch_id: str, tenant: str | None = None) -> Batch:
        found = await (await self.backend()).batch_get(batch_id, tenant)
        if found is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        return found

    def get_batch(self, batch_id: str, tenant: str | None = None) -> Batch:
        return run_sync(self.get_batch_async(batch_id, tenant))

    async def batches_async(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        return await (await self.backend()).batch_list(
            tenant, unfinished=unfinished, before_id=before_id, limit=limit
        )

    def batches(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        return run_sync(
            self.batches_async(tenant, unfinished=unfinished, before_id=before_id, limit=limit)
        )

    async def cancel_batch_async(self, batch_id: str, tenant: str | None = None) -> Batch:
        """Cancel every job of the batch not yet ended: waiting ones at once,
        running ones asked to stop (their workers abort them)."""
        from offload.lifecycle import WAITING, State

        backend = await self.backend()
        found = await self.get_batch_async(batch_id, tenant)
        live = frozenset(WAITING | {State.RUNNING})
        before: str | None = None
        while True:
            page = await backend.job_list(
                JobQuery(batch_id=found.id, states=live, before_id=before, limit=500)
            )
            for job in page:
                await backend.job_cancel(job.id)
            if len(page) < 500:
                break
            before = page[-1].id
        await self.settle_batch_async(found.id)
        return await self.get_batch_async(found.id)

    def cancel_batch(self, batch_id: str, tenant: str | None = None) -> Batch:
        return run_sync(self.cancel_batch_async(batch_id, tenant))

    async def settle_batch_async(self, batch_id: str) -> list[Job]:
        """Fire the batch's continuations if it has just ended; safe to call from
        any number of processes at once (workers do it for you)."""
        from offload import batch as batches

        return await batches.settle(self, await self.backend(), batch_id)

    def settle_batch(self, batch_id: str) -> list[Job]:
        return run_sync(self.settle_batch_async(batch_id))

    # workflows ------------------------------------------------------------------------

    async def workflow_async(
        self,
        graph: Graph | Mapping[str, NewJob | Step] | NewJob,
        *,
        name: str | None = None,
        tenant: str = DEFAULT_TENANT,
        workflow_id: str | None = None,
    ) -> Workflow:
        """Store a graph of prepared jobs (``chain``, ``group``, ``chord``, or a
        mapping of step names to jobs and ``step(job, after=[...])``) in one
        enqueue; each job starts once the steps it runs after have ended."""
        from offload import workflow as wf

        record = NewBatch(id=workflow_id or new_id(), tenant=tenant, name=name,
                          meta={wf.MARK: True})  # fmt: skip
        jobs = wf.workflow_jobs(wf.as_graph(graph), record.id, tenant)
        stored = await (await self.backend()).batch_create(record)
        return wf.assemble(stored, await self.enqueue_new_async(jobs))

    def workflow(
        self,
        graph: Graph | Mapping[str, NewJob | Step] | NewJob,
        *,
        name: str | None = None,
        tenant: str = DEFAULT_TENANT,
        workflow_id: str | None = None,
    ) -> Workflow:
        return run_sync(
            self.workflow_async(graph, name=name, tenant=tenant, workflow_id=workflow_id)
        )

    async def get_workflow_async(self, workflow_id: str, tenant: str | None = None) -> Workflow:
        from offload import dependencies
        from offload import workflow as wf

        backend = await self.backend()
        found = await backend.batch_get(workflow_id, tenant)
        if found is None or not wf.is_workflow(found):
            raise NotFoundError(f"no workflow {workflow_id!r}")
        jobs = await dependencies.batch_jobs(backend, found.id)
        for job in jobs:
            job.serializer = self.serializer
        return wf.assemble(found, jobs)

    def get_workflow(self, workflow_id: str, tenant: str | None = None) -> Workflow:
        return run_sync(self.get_workflow_async(workflow_id, tenant))

    async def workflows_async(
        self, tenant: str | None = None, *, before_id: str | None = None, limit: int = 50
    ) -> list[Batch]:
        """Workflows newest first, as their batch records (counts per state)."""
        from offload import workflow as wf

        out: list[Batch] = []
        backend = await self.backend()
        while len(out) < limit:
            page = await backend.batch_list(tenant, before_id=before_id, limit=limit)
            out.extend(b for b in page if wf.is_workflow(b))
            if len(page) < limit:
                break
            before_id = page[-1].id
        return out[:limit]

    def workflows(
        self, tenant: str | None = None, *, before_id: str | None = None, limit: int = 50
    ) -> list[Batch]:
        return run_sync(self.workflows_async(tenant, before_id=before_id, limit=limit))

    async def cancel_workflow_async(self, workflow_id: str, tenant: str | None = None) -> Workflow:
        """Cancel every job of the workflow not yet ended: waiting ones at once,
        running ones asked to stop (their workers abort them)."""
        found = await self.get_workflow_async(workflow_id, tenant)
        await self.cancel_batch_async(found.id)
        return await self.get_workflow_async(found.id)

    def cancel_workflow(self, workflow_id: str, tenant: str | None = None) -> Workflow:
        return run_sync(self.cancel_workflow_async(workflow_id, tenant))

    # runtime --------------------------------------------------------------------------

    async def workers_async(self) -> list[WorkerInfo]:
        """Workers alive now (they beat every heartbeat period), with their jobs."""
        return await (await self.backend()).worker_list()

    def workers(self) -> list[WorkerInfo]:
        return run_sync(self.workers_async())

    async def stats_async(
        self, tenant: str | None = None, queue: str | None = None, days: int = 30
    ) -> Stats:
        """All-time totals per queue and the last ``days`` days, which outlive
        the purge of the jobs they count (``offload.stats``)."""
        return await collect_stats(await self.backend(), tenant, queue, days)

    def stats(self, tenant: str | None = None, queue: str | None = None, days: int = 30) -> Stats:
        return run_sync(self.stats_async(tenant, queue, days))


def _closer(ref: weakref.ref[App]) -> Callable[[], Coroutine[Any, Any, None] | None]:
    """Closes the app's bridge backend at exit, if the app still exists; a weak
    reference, so registering never keeps an app alive."""

    def close() -> Coroutine[Any, Any, None] | None:
        app = ref()
        return None if app is None else app.close_async()

    return close


def _check_schedule(
    schedule_id: str,
    tenant: str,
    queue: str | None,
    priority: int | None,
    max_attempts: int | None,
    timeout: float | None,
) -> None:
    """A schedule's id travels in URL paths, so it refuses ``/`` too; the job
    options it stores obey the rules of every enqueue."""
    check_name("schedule id", schedule_id, slash=False)
    check_name("tenant", tenant)
    _check_scope(None, queue)
    if priority is not None:
        check_priority(priority)
    if max_attempts is not None:
        check_attempts(max_attempts)
    check_timeout(timeout)


def _check_scope(tenant: str | None, queue: str | None) -> None:
    if tenant is not None:
        check_name("tenant", tenant)
    if queue is not None:
        check_name("queue", queue)
