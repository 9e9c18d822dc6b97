"""OpenTelemetry traces: a PRODUCER span per enqueue call, a CONSUMER span per
attempt, joined across processes by the W3C trace context kept in the job's meta.

Built on ``opentelemetry-api`` only (``pip install 'offload[otel]'``): the SDK, its
exporters and sampling are the application's choice. With no SDK configured every
span is a no-op and nothing is written to the job, so the middleware costs next to
nothing until someone wants the traces.

The context is stored with the job rather than held in memory, so it survives
the enqueuing process, delays, schedules and retries: every attempt is its own span,
a child of the span that enqueued the job, whichever worker runs it and however
late. Span names and attributes follow the messaging conventions where they fit
(``send``/``process``, ``messaging.destination.name`` is the queue); the task name
goes in the span name because it is what a person looks for in a trace.
"""

from __future__ import annotations

import contextvars
import dataclasses
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from offload.integrations._outcome import DEAD, FAILED, outcome_name
from offload.job import Job, JobContext, NewJob, Outcome, Rejected, Schedule
from offload.middleware import Middleware
from offload.observability.logs import redact

# The key of ``Job.meta`` that carries the propagator's headers (``traceparent``...).
META_KEY = "otel"
# The key of ``Job.meta`` with the headers of spans that caused the job without
# being its parent: a batch's creation for its continuations, a scheduler's firing.
LINKS_KEY = "otel_links"
# A bulk enqueue of many caused jobs links to this many causes at most.
MAX_LINKS = 32
SYSTEM = "offload"

# The span of the enqueue call in progress in this task; an enqueue call runs its
# before and after hooks in one task, so a context variable pairs them safely.
_sending: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "offload_otel_sending", default=None
)


# What the global tracer provider is until an SDK (or a distro) sets one.
_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


@dataclass(slots=True)
class _Run:
    span: Span
    token: object
    failed: bool = False


def _offload_version() -> str:
    try:
        return version("offload")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


class OpenTelemetryMiddleware(Middleware):
    """``App(..., middleware=[OpenTelemetryMiddleware()])`` in the enqueuing
    processes and the workers. ``tracer_provider`` defaults to the global one;
    ``propagator`` to the global one (W3C trace context and baggage)."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(
            "offload", _offload_version(), tracer_provider=tracer_provider
        )
        self.propagator = propagator
        self._runs: dict[str, _Run] = {}
        self._live = tracer_provider is not None and not isinstance(tracer_provider, _NO_SDK)

    def _on(self) -> bool:
        """Whether an SDK makes spans. Without one every span is a no-op and
        nothing is propagated, so the hooks skip even building them and the
        middleware costs a call per hook. Asked again until an SDK is set, since
        an application may configure it after building its ``App``; once set,
        the global provider stays."""
        if not self._live:
            self._live = not isinstance(trace.get_tracer_provider(), _NO_SDK)
        return self._live

    # propagation ----------------------------------------------------------------

    def _inject(self, ctx: otel_context.Context) -> dict[str, str]:
        carrier: dict[str, str] = {}
        (self.propagator or propagate.get_global_textmap()).inject(carrier, context=ctx)
        return carrier

    def _extract(self, job: Job) -> otel_context.Context:
        carrier = job.meta.get(META_KEY)
        if not isinstance(carrier, dict):
            return otel_context.Context()
        return (self.propagator or propagate.get_global_textmap()).extract(carrier)

    def _links(self, jobs: Sequence[NewJob | Job]) -> list[Link]:
        """The spans that caused these jobs, once each."""
        links: dict[tuple[int, int], Link] = {}
        for job in jobs:
            carriers = job.meta.get(LINKS_KEY)
            for carrier in carriers if isinstance(carriers, list) else ():
                if not isinstance(carrier, dict) or len(links) >= MAX_LINKS:
                    continue
                ctx = (self.propagator or propagate.get_global_textmap()).extract(carrier)
                linked = trace.get_current_span(ctx).get_span_context()
                if linked.is_valid:
                    links[linked.trace_id, linked.span_id] = Link(linked)
        return list(links.values())

    def _with_cause(self, job: NewJob, ctx: otel_context.Context) -> NewJob:
        carrier = self._inject(ctx)
        if not carrier:  # no SDK, or nothing sampled to link to
            return job
        causes = job.meta.get(LINKS_KEY)
        causes = [*causes, carrier] if isinstance(causes, list) else [carrier]
        return dataclasses.replace(job, meta={**job.meta, LINKS_KEY: causes})

    # causes ---------------------------------------------------------------------

    def before_batch(self, then: list[NewJob]) -> list[NewJob] | None:
        """Continuations run long after, in a trace of their own (whoever settles
        the batch has no span of its creator); they link to the span that created
        the batch, the web request or task that called ``batch``."""
        if not self._on():
            return None
        if not trace.get_current_span().get_span_context().is_valid:
            return None
        ctx = otel_context.get_current()
        return [self._with_cause(job, ctx) for job in then]

    def before_fire(self, schedule: Schedule, job: NewJob) -> NewJob | None:
        """A span for the firing itself, a root (the scheduler loop is no
        request); the job links to it, so every run of a schedule is found
        from the firings and each firing's job from its run."""
        if not self._on():
            return None
        span = self.tracer.start_span(
            f"fire {schedule.id}", context=otel_context.Context(), kind=SpanKind.INTERNAL,
            attributes=fire_attributes(schedule, job),
        )  # fmt: skip
        try:
            return self._with_cause(job, trace.set_span_in_context(span))
        finally:
            span.end()

    # enqueue --------------------------------------------------------------------

    def before_enqueue_many(self, jobs: list[NewJob]) -> list[NewJob] | None:
        if not self._on():
            return None
        span = self.tracer.start_span(
            _send_name(jobs), kind=SpanKind.PRODUCER, attributes=send_attributes(jobs),
            links=self._links(jobs),
        )  # fmt: skip
        _sending.set(span)
        carrier = self._inject(trace.set_span_in_context(span))
        if not carrier:  # no SDK, or not sampled and nothing to propagate
            return None
        return [dataclasses.replace(j, meta={**j.meta, META_KEY: carrier}) for j in jobs]

    def after_enqueue_many(self, jobs: list[Job]) -> None:
        span = _sending.get()
        _sending.set(None)
        if span is None:
            return
        if len(jobs) == 1:
            span.set_attribute("messaging.message.id", jobs[0].id)
            span.set_attribute("offload.duplicate", jobs[0].duplicate)
        span.end()

    def on_enqueue_error(self, jobs: list[NewJob], error: BaseException) -> None:
        span = _sending.get()
        _sending.set(None)
        if span is not None:
            _record_error(span, error)
            span.end()

    # execution ------------------------------------------------------------------

    def before_execute(self, job: Job, ctx: JobContext) -> None:
        if not self._on():
            return
        span = self._start_run(job)
        token = otel_context.attach(trace.set_span_in_context(span))
        self._runs[job.id] = _Run(span, token)

    def _start_run(self, job: Job) -> Span:
        return self.tracer.start_span(
            f"process {job.task}", context=self._extract(job), kind=SpanKind.CONSUMER,
            attributes=process_attributes(job), links=self._links([job]),
        )  # fmt: skip

    def on_error(self, job: Job, error: BaseException) -> None:
        run = self._runs.get(job.id)
        if run is not None:
            run.failed = True
            _record_error(run.span, error)

    def after_execute(self, job: Job, outcome: Outcome) -> None:
        if not self._on():
            return
        run = self._runs.pop(job.id, None)
        if run is None:  # rejected before it could start: still one span, in error
            run = _Run(self._start_run(job), None)
        name = outcome_name(outcome)
        run.span.set_attribute("offload.outcome", name)
        if isinstance(outcome, Rejected):
            run.span.set_status(Status(StatusCode.ERROR, outcome.error.type))
        elif name in (FAILED, DEAD) and not run.failed:
            run.span.set_status(Status(StatusCode.ERROR, name))
        run.span.end()
        if run.token is not None:
            otel_context.detach(run.token)  # type: ignore[arg-type]


def _record_error(span: Span, error: BaseException) -> None:
    # The exporter ships message and stack trace off the machine: credentials
    # in them (a DSN in a connection error) are masked first.
    trace = "".join(traceback.format_exception(error))
    span.record_exception(error, attributes={"exception.message": redact(str(error)),
                                             "exception.stacktrace": redact(trace)})  # fmt: skip
    span.set_status(
        Status(StatusCode.ERROR, f"{type(error).__module__}.{type(error).__qualname__}")
    )


def _one(values: Sequence[str]) -> str | None:
    """The value all jobs share, or ``None`` for a mixed bulk."""
    return values[0] if values and all(v == values[0] for v in values) else None


def _send_name(jobs: Sequence[NewJob]) -> str:
    task = _one([j.task for j in jobs])
    return f"send {task}" if task is not None else "send"


def send_attributes(jobs: Sequence[NewJob]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
    }
    if len(jobs) != 1:
        attributes["messaging.batch.message_count"] = len(jobs)
    shared: dict[str, Any] = {
        "messaging.destination.name": _one([j.queue for j in jobs]),
        "offload.task": _one([j.task for j in jobs]),
        "offload.tenant": _one([j.tenant for j in jobs]),
        "offload.schedule": _one([str(j.meta.get("schedule")) for j in jobs]),
    }
    attributes.update({k: v for k, v in shared.items() if v is not None and v != "None"})
    return attributes


def fire_attributes(schedule: Schedule, job: NewJob) -> dict[str, AttributeValue]:
    return {
        "messaging.system": SYSTEM,
        "messaging.destination.name": job.queue,
        "offload.schedule": schedule.id,
        "offload.task": job.task,
        "offload.tenant": schedule.tenant,
        "offload.firing": str(job.meta.get("firing", "")),
        "offload.cron": schedule.cron,
    }


def process_attributes(job: Job) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": job.id,
        "offload.task": job.task,
        "offload.tenant": job.tenant,
        "offload.attempt": job.attempts,
        "offload.max_attempts": job.max_attempts,
    }
    if job.batch_id is not None:
        attributes["offload.batch"] = job.batch_id
    if "schedule" in job.meta:
        attributes["offload.schedule"] = str(job.meta["schedule"])
    return attributes


__all__ = ["LINKS_KEY", "META_KEY", "OpenTelemetryMiddleware"]
