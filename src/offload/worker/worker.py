"""The worker: leases jobs, runs them with bounded concurrency, records outcomes.

It is three parts and a few side loops. The fetcher leases into free slots, the
executor turns each job into an ``Outcome`` without touching storage, the recorder
applies outcomes through the lifecycle; the recorder's group-commit loop and the
side loops (heartbeat, lease recovery, cancel checks, cron firing, batch settling,
purge, registry) are services run by one ``Supervisor``. Shutdown is two-phase: stop leasing
and let running jobs finish within the grace period, then cancel what is left,
which hands each job back to the queue with its checkpoint, attempt not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from offload.app import App
from offload.backends.base import Backend
from offload.batch import settle
from offload.dependencies import parents_of
from offload.errors import BackendError
from offload.job import (
    Failed,
    HeartbeatReply,
    Interrupted,
    Job,
    JobContext,
    Lease,
    Outcome,
    Snoozed,
    WorkerInfo,
)
from offload.lifecycle import State
from offload.observability.logs import bind_job
from offload.worker.executor import CANCEL, LEASE_LOST, SHUTDOWN, JobExecutor, stopped
from offload.worker.fetcher import Fetcher
from offload.worker.limits import LimitGate
from offload.worker.recorder import Recorder
from offload.worker.services import Service
from offload.worker.services.batches import BatchSettler
from offload.worker.services.cancels import CancelWatch
from offload.worker.services.heartbeat import Heartbeat
from offload.worker.services.purge import Purge
from offload.worker.services.recover import Recover
from offload.worker.services.registry import Registry
from offload.worker.services.scheduler import Scheduler
from offload.worker.services.self_fence import LeaseClock, SelfFence
from offload.worker.services.status import StatusWatch
from offload.worker.supervisor import ServiceDied as ServiceDied  # its old home
from offload.worker.supervisor import Supervisor
from offload.worker.threads import JobThreads

log = logging.getLogger("offload.worker")


@dataclass(slots=True)
class Running:
    job: Job
    ctx: JobContext
    task: asyncio.Task[None]
    sync: bool
    # Its lease lost or given up: not renewed, and its outcome not recorded.
    given_up: bool = False
    # Whether ``_process`` has begun (a task cancelled before its first step
    # never runs its body, so nothing would free its slot) and whether the job's
    # own code runs (a sync task's thread cannot be cancelled, only told).
    entered: bool = False
    executing: bool = False

    def cancellable(self) -> bool:
        return self.entered and not (self.sync and self.executing)


class Worker:
    def __init__(
        self,
        app: App,
        queues: Sequence[str] = ("default",),
        *,
        concurrency: int | None = None,
        burst: bool = False,
        fetch_batch: int | None = None,
        poll_interval: float | None = None,
        grace_period: float | None = None,
        lease_seconds: float | None = None,
        handle_signals: bool = True,
        worker_id: str | None = None,
        broker_wait: float | None = None,
    ) -> None:
        s = app.settings
        self.app = app
        self.queues = list(queues)
        self.concurrency = concurrency or s.concurrency
        self.burst = burst
        self.batch = fetch_batch or s.fetch_batch or self.concurrency
        self.poll_interval = poll_interval or s.poll_interval
        self.grace_period = s.grace_period if grace_period is None else grace_period
        self.broker_wait = s.broker_wait if broker_wait is None else broker_wait
        self.lease_seconds = lease_seconds or s.lease_seconds
        self.heartbeat_every = min(s.heartbeat_every, self.lease_seconds / 3)
        self.lease_clock = LeaseClock(self.lease_seconds)
        self.handle_signals = handle_signals
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.running: dict[str, Running] = {}
        self.processed = 0
        self._stop_requested = asyncio.Event()
        self._forced = asyncio.Event()
        self._threads = JobThreads(s.thread_pool_size or self.concurrency)
        self.abandoned_threads = 0
        # What the app's lifespan yielded, handed to every job as ``ctx.state``.
        self.state: Any = None
        self._in_lifespan = False

    # control ----------------------------------------------------------------------

    def stop(self, force: bool = False) -> None:
        """Request a graceful stop; ``force`` skips the grace period. A wait for
        jobs in progress ends now rather than at its poll interval."""
        if force:
            self._forced.set()
        self._stop_requested.set()
        fetcher: Fetcher | None = getattr(self, "fetcher", None)
        if fetcher is not None:
            fetcher.stopping.set()

    def _on_signal(self) -> None:
        if self._stop_requested.is_set():
            log.warning("second signal: cancelling running jobs now")
            self.stop(force=True)
        else:
            log.info("stopping: no new jobs; waiting up to %ss for %d running",
                     self.grace_period, len(self.running))  # fmt: skip
            self.stop()

    # main loop --------------------------------------------------------------------

    async def run(self) -> None:
        async with self._lifespan():
            await self._run()

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        """Enter the app's lifespan once around this worker's life; a worker
        already inside it (``run_one`` called many times by a host) stays there."""
        if self.app.lifespan is None or self._in_lifespan:
            yield
            return
        async with self.app.lifespan(self.app) as state:
            self.state, self._in_lifespan = state, True
            try:
                yield
            finally:
                self.state, self._in_lifespan = None, False

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._install_signals()
        try:
            backend = await self._reach_backend()
            if backend is None:
                return  # stopped while it waited for the backend
            self._assemble(backend)
            self.supervisor = Supervisor(self._services(backend), self._service_died)
            self.supervisor.start()
            log.info("worker %s: queues %s, concurrency %d",
                     self.id, self.queues, self.concurrency)  # fmt: skip
            try:
                await self._fetch_until_stopped(backend)
                await self._shutdown()
            finally:
                await self.supervisor.stop()
                self._threads.shutdown()
        finally:
            self._remove_signals()
        self.supervisor.raise_if_died()

    async def _reach_backend(self) -> Backend | None:
        """The app's backend, waited for while it cannot be reached.

        A worker often starts before its broker is up (a deploy, a reboot,
        containers started together); exiting at once left that to whatever
        restarts the process. It tries again with a growing pause, up to
        ``broker_wait`` seconds in all, logging each failure with its cause,
        then raises the last ``BackendError``. A burst run (a batch job of
        its own) fails at once. ``None``: a stop was asked for meanwhile."""
        deadline = time.monotonic() + self.broker_wait
        pause = 0.5
        while True:
            try:
                return await self.app.backend()
            except BackendError as exc:
                left = deadline - time.monotonic()
                if self.burst or left <= 0 or self._stop_requested.is_set():
                    raise
                pause = min(pause * 2, 30.0, left)
                log.warning("worker %s: cannot reach the backend (%s); trying again in %.1fs, "
                            "for up to %.0fs more", self.id, exc, pause, left)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stop_requested.wait()
            if self._stop_requested.is_set():
                return None

    async def run_one(self, job: Job) -> Job | None:
        """Run one job the caller leased itself, with the worker's own machinery
        around it (limits, executor, recorder, heartbeat, cancel watch), then fire
        its batch's continuations if it ended the batch: for a host that receives
        jobs itself, such as an Azure Functions queue trigger. Returns the job as
        stored afterwards. The app's lifespan is entered for this call unless the
        host keeps the worker inside it (``async with worker.lifespan():``)."""
        async with self._lifespan():
            return await self._run_one(job)

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Keep the app's lifespan open across many ``run_one`` calls."""
        return self._lifespan()

    async def _run_one(self, job: Job) -> Job | None:
        backend = await self.app.backend()
        self._assemble(backend)
        self.supervisor = Supervisor(self._job_services(backend), self._service_died)
        self.supervisor.start()
        try:
            self._start(job)
            await self.running[job.id].task
            await self.recorder.drained()
        finally:
            await self.supervisor.stop()
            self._threads.shutdown()
        self.supervisor.raise_if_died()
        if job.batch_id is not None:
            await settle(self.app, backend, job.batch_id)
        return await backend.job_get(job.id)

    def _assemble(self, backend: Backend) -> None:
        self._loop = asyncio.get_running_loop()
        settings = self.app.settings
        self.scheduler = Scheduler(self.app, backend, settings.scheduler_interval)
        self.settler = BatchSettler(self.app, backend, settings.batch_sweep_interval)
        self._written_batches: set[str] = set()
        self.recorder = Recorder(
            backend, self.lease_seconds, on_batch_job_written=self._batch_job_written
        )
        self.gate = LimitGate(backend, self.lease_seconds)
        self.started_at = datetime.now(UTC)
        self.executor = JobExecutor(self.app, self._threads)
        self.fetcher = Fetcher(
            backend, self.id, self.queues, concurrency=self.concurrency, batch=self.batch,
            lease_seconds=self.lease_seconds, poll_interval=self.poll_interval,
            dispatch=self._start, busy=lambda: len(self.running),
        )  # fmt: skip

    async def _fetch_until_stopped(self, backend: Backend) -> None:
        fetcher = self.fetcher
        supervisor = self.supervisor
        while not self._stop_requested.is_set():
            if supervisor.broken:
                break
            if len(self.running) >= self.concurrency:
                await fetcher.wait_for_slot()
                continue
            try:
                started = await fetcher.fetch_once()
            except Exception as exc:
                log.warning("lease failed (%s); retrying after %ss", exc, self.poll_interval)
                await fetcher.wait_for_work()
                continue
            if started:
                continue
            if self.burst and await self._drained(backend):
                break
            await fetcher.wait_for_work()

    async def _drained(self, backend: Backend) -> bool:
        if self.running:
            return False
        await self.recorder.drained()
        if self._written_batches:
            # Batches this run may have ended: fire their continuations now (the
            # scheduler may be at it too; settling is idempotent), so a burst run
            # leaves no ended batch behind and then runs the continuation.
            written, self._written_batches = self._written_batches, set()
            for batch_id in written:
                await settle(self.app, backend, batch_id)
        counts = await backend.job_counts()
        if any(counts.get((q, State.RUNNING), 0) for q in self.queues):
            return False
        queued = {q: counts.get((q, State.QUEUED), 0) for q in self.queues}
        if not any(queued.values()):
            return True
        # Queued jobs that a pause holds cannot be run by this burst: not waiting.
        queued = await self._not_paused(backend, queued)
        return not any(n > 0 for n in queued.values())

    async def _not_paused(self, backend: Backend, queued: dict[str, int]) -> dict[str, int]:
        pauses = await backend.control_pauses()
        if any(p.tenant is None and p.queue is None for p in pauses):
            return {}
        for p in pauses:
            if p.tenant is None and p.queue in queued:
                queued[p.queue] = 0
        for tenant in {p.tenant for p in pauses if p.tenant is not None}:
            mine = [p for p in pauses if p.tenant == tenant]
            held = await backend.job_counts(tenant)
            for q in queued:
                if any(p.queue in (None, q) for p in mine):
                    queued[q] -= held.get((q, State.QUEUED), 0)
        return queued

    def _batch_job_written(self, batch_id: str) -> None:
        if self.burst:  # only a burst run looks at them again (in _drained)
            self._written_batches.add(batch_id)
        self.settler.touch(batch_id)

    def _services(self, backend: Backend) -> list[Service]:
        settings = self.app.settings
        services: list[Service] = [
            *self._job_services(backend),
            Recover(backend, settings.recover_interval),
            Purge(backend, settings.retention_seconds, settings.purge_interval),
            Registry(backend, self.info, min(self.heartbeat_every, 2.0)),
        ]
        if settings.scheduler:
            services += [self.scheduler, self.settler]
        services += [StatusWatch(backend, f) for f in self.app.status_followers]
        return services

    def _job_services(self, backend: Backend) -> list[Service]:
        """What running jobs needs: recording outcomes, keeping leases, cancels."""
        heartbeat = self.heartbeat = Heartbeat(
            backend, self._live_leases, self._on_heartbeat, self.heartbeat_every,
            self.lease_seconds, renew=self.gate.renew, clock=self.lease_clock,
        )  # fmt: skip
        fence = SelfFence(self.lease_clock, self._held, self._give_up)
        cancels = CancelWatch(
            backend, lambda: list(self.running), self._on_heartbeat,
            self.app.settings.cancel_check_interval,
        )  # fmt: skip
        return [self.recorder, heartbeat, fence, cancels]

    def info(self) -> WorkerInfo:
        """How this worker describes itself in the registry."""
        return WorkerInfo(
            id=self.id, hostname=socket.gethostname(), pid=os.getpid(), queues=self.queues,
            concurrency=self.concurrency, started_at=self.started_at,
            job_ids=list(self.running), meta={"processed": self.processed, "burst": self.burst},
        )  # fmt: skip

    def _service_died(self, name: str, error: BaseException) -> None:
        self.stop()

    # one job ------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        job.serializer = self.app.serializer
        found = self.app.tasks.get(job.task)
        encode = self.app.serializer.dumps if found is None else found.encode_checkpoint
        ctx = JobContext(job, self.recorder_reporter, encode, state=self.state)
        ctx._loop = self._loop
        task = self._loop.create_task(self._process(job, ctx))
        sync = not self._is_async(job.task)
        self.running[job.id] = Running(job, ctx, task, sync)
        self._count_lease_from(job.id, self.fetcher.asked_at)

    def _count_lease_from(self, job_id: str, asked_at: float) -> None:
        self.lease_clock.asked([job_id], asked_at)
        if time.monotonic() - asked_at > self.heartbeat_every / 2:
            self.heartbeat.woken.set()

    def _is_async(self, name: str) -> bool:
        task = self.app.tasks.get(name)
        return task is None or task.is_async

    async def _process(self, job: Job, ctx: JobContext) -> None:
        """Every way out goes through ``_finish`` and the gate's release: a run
        stopped while it waits for a limit or its parents would otherwise keep
        its slot, and its limit slot, for the worker's life."""
        bind_job(job)  # this asyncio task's log lines carry the job (observability.logs)
        running = self.running.get(job.id)
        if running is not None:
            running.entered = True
        try:
            outcome = await self._outcome(job, ctx, running)
        except asyncio.CancelledError as exc:  # stopped before the task started
            outcome = stopped(ctx.cancel_reason or (exc.args[0] if exc.args else SHUTDOWN), ctx)
        try:
            await self._finish(job, outcome)
        finally:
            if self.gate.held:
                await self.gate.release(job.id)

    async def _outcome(self, job: Job, ctx: JobContext, running: Running | None) -> Outcome:
        refused = await self._admit(job)
        if job.depends_on and refused is None:
            await self._read_parents(job, ctx)
        if ctx.cancel_reason is not None:
            # Told to stop while it waited (a sync task's asyncio task is not
            # cancelled): it never starts.
            return stopped(ctx.cancel_reason, ctx)
        if refused is not None:
            return refused
        if running is not None:
            running.executing = True
        return await self.executor.run(job, ctx)

    async def _admit(self, job: Job) -> Snoozed | None:
        task = self.app.tasks.get(job.task)
        if task is None or not task.limits.any:
            return None
        try:
            return await self.gate.admit(job, task)
        except Exception as exc:
            return Snoozed(self.poll_interval, f"limit check failed: {exc}")

    async def _read_parents(self, job: Job, ctx: JobContext) -> None:
        """Fill ``ctx.parents``; a failed read leaves it empty rather than
        stranding the job, and a task that needs a parent then fails and retries."""
        try:
            ctx.parents = await parents_of(self.recorder.backend, job)
        except Exception as exc:
            log.warning("job %s: could not read its parents (%s)", job.id, exc)

    async def _finish(self, job: Job, outcome: Outcome) -> None:
        running = self.running.pop(job.id, None)
        self.fetcher.slot_freed.set()
        if running is not None and running.given_up:
            # Recording it could only be refused, or (a lease given up before the
            # broker's expiry) hand the attempt back: recovery redelivers the job.
            log.info("job %s (%s) attempt %d: given up, outcome not recorded",
                     job.id, job.task, job.attempts)  # fmt: skip
            return
        self._log(job, outcome)
        if isinstance(outcome, Snoozed):  # never ran: not processed, no after_execute
            self.fetcher.wake_in(outcome.delay)
            await self.recorder.record(job, outcome)
            return
        self.processed += 1
        if isinstance(outcome, Failed) and outcome.retry_in is not None:
            self.fetcher.wake_in(outcome.retry_in)
        if self.app.middleware.has("after_execute"):
            await self.app.middleware.run("after_execute", job, outcome)
        await self.recorder.record(job, outcome)

    def _log(self, job: Job, outcome: Outcome) -> None:
        if isinstance(outcome, Snoozed):
            log.debug("job %s (%s): snoozed %.2fs, %s", job.id, job.task, outcome.delay,
                      outcome.reason)  # fmt: skip
            return
        if isinstance(outcome, Failed):
            # The error's type and what happens next; its message and traceback
            # stay in the job's record, since they may carry payload data.
            then = "dead" if outcome.retry_in is None else f"retry in {outcome.retry_in:.2f}s"
            log.info("job %s (%s) attempt %d: failed with %s; %s", job.id, job.task,
                     job.attempts, outcome.error.type, then)  # fmt: skip
            return
        if log.isEnabledFor(logging.DEBUG) or type(outcome).__name__ != "Succeeded":
            log.info("job %s (%s) attempt %d: %s", job.id, job.task, job.attempts,
                     type(outcome).__name__.lower())  # fmt: skip

    @property
    def recorder_reporter(self) -> _Reporter:
        return _Reporter(self)

    # leases, heartbeats, cancellation ------------------------------------------------

    def _live_leases(self) -> list[Lease]:
        held = [r.job.lease for r in self.running.values() if not r.given_up]
        return held + self.recorder.pending_leases

    def _held(self) -> list[str]:
        return [job_id for job_id, r in self.running.items() if not r.given_up]

    def _on_heartbeat(self, reply: HeartbeatReply) -> None:
        for job_id in reply.cancel_requested:
            self._cancel_local(job_id, CANCEL)
        for job_id in reply.lost:
            if job_id in self.running:
                log.warning("job %s: lease lost; abandoning this run", job_id)
            self._abandon(job_id)

    def _give_up(self, job_ids: set[str]) -> None:
        """The self-fence: no renewal for most of a lease (see ``self_fence``)."""
        for job_id in job_ids:
            log.warning("job %s: lease not renewed in time; giving this run up", job_id)
            self._abandon(job_id)

    def _abandon(self, job_id: str) -> None:
        running = self.running.get(job_id)
        if running is not None:
            running.given_up = True
            self._cancel_local(job_id, LEASE_LOST)

    def _cancel_local(self, job_id: str, reason: str) -> None:
        running = self.running.get(job_id)
        if running is None:
            return
        running.ctx.cancel_reason = reason
        running.ctx.cancelled.set()
        if running.cancellable():
            running.task.cancel(reason)

    # shutdown -----------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self.fetcher.stopping.set()
        if self.running and not self._forced.is_set():
            await self._wait_running(self.grace_period)
        if self.running:
            await self._interrupt_running()
        await self.recorder.flush()

    async def _wait_running(self, timeout: float) -> None:
        """Until every running job ends, the grace period passes, or a second signal."""
        all_done = asyncio.ensure_future(asyncio.wait([r.task for r in self.running.values()]))
        forced = asyncio.ensure_future(self._forced.wait())
        await asyncio.wait([all_done, forced], timeout=timeout, return_when="FIRST_COMPLETED")
        all_done.cancel()
        forced.cancel()

    async def _interrupt_running(self) -> None:
        log.warning("grace period over: handing %d job(s) back to the queue", len(self.running))
        leftovers = list(self.running.values())
        for running in leftovers:
            # A reason already given (a cancel request, a lease given up) stands.
            reason = running.ctx.cancel_reason or SHUTDOWN
            running.ctx.cancel_reason = reason
            running.ctx.cancelled.set()
            if running.cancellable():
                running.task.cancel(reason)
        await asyncio.wait([r.task for r in leftovers], timeout=1.0)
        for running in leftovers:
            if running.task.done():
                continue
            # A thread cannot be stopped from outside: hand the job back now;
            # the lease token changes, so the thread's late result is refused.
            # A run given up is left to lease-expiry recovery, like any other.
            running.task.cancel(SHUTDOWN)
            self.running.pop(running.job.id, None)
            self.abandoned_threads += 1
            if not running.given_up:
                await self.recorder.record(running.job, Interrupted(self._checkpoint(running)))

    def _checkpoint(self, running: Running) -> bytes | None:
        return running.ctx.encoded_checkpoint()

    # signals --------------------------------------------------------------------------

    def _install_signals(self) -> None:
        if not self.handle_signals:
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._on_signal)

    def _remove_signals(self) -> None:
        if not self.handle_signals:
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.remove_signal_handler(sig)


class _Reporter:
    """Writes a running job's checkpoint and progress, fenced by its lease."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def save(
        self, job: Job, checkpoint: bytes | None, progress: float | None, message: str | None
    ) -> None:
        await self.worker.recorder.backend.job_save_progress(
            job.lease, checkpoint, progress, message
        )
