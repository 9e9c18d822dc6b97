"""What a job's life contributes to metrics, whichever library records them.

Prometheus (``prometheus-client``) and the OpenTelemetry metrics API record the
same instruments from the same hooks; keeping the hooks here means the two never
disagree about what counts as an enqueue, how long a job waited, or which outcome
an attempt had. A subclass only says how to record.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from offload.integrations._outcome import INTERRUPTED, SNOOZED, outcome_name
from offload.job import Job, JobContext, Outcome
from offload.middleware import Middleware

# Jobs run from milliseconds to hours; waits likewise.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class JobMetrics(Middleware, ABC):
    """The hooks; subclasses record. Labels are task and queue, the tenant only
    when asked for, since tenants may be unbounded; never a job id."""

    def __init__(self, *, tenant_label: bool = False) -> None:
        self.tenant_label = tenant_label
        self._started: dict[str, float] = {}

    def _labels(self, job: Job) -> tuple[str, ...]:
        return (job.task, job.queue, *((job.tenant,) if self.tenant_label else ()))

    @property
    def label_names(self) -> tuple[str, ...]:
        return ("task", "queue", *(("tenant",) if self.tenant_label else ()))

    # recording, per library ---------------------------------------------------------

    @abstractmethod
    def record_enqueued(self, labels: tuple[str, ...]) -> None:
        """Recorded by the metrics library the subclass wraps."""

    @abstractmethod
    def record_wait(self, labels: tuple[str, ...], seconds: float) -> None:
        """Recorded by the metrics library the subclass wraps."""

    @abstractmethod
    def record_duration(self, labels: tuple[str, ...], seconds: float) -> None:
        """Recorded by the metrics library the subclass wraps."""

    @abstractmethod
    def record_completed(self, labels: tuple[str, ...], outcome: str) -> None:
        """Recorded by the metrics library the subclass wraps."""

    def active(self) -> bool:
        """Whether recording goes anywhere; when not, the hooks skip their work."""
        return True

    # hooks ------------------------------------------------------------------------------

    def after_enqueue(self, job: Job) -> None:
        if not job.duplicate and self.active():
            self.record_enqueued(self._labels(job))

    def before_execute(self, job: Job, ctx: JobContext) -> None:
        if not self.active():
            return
        self._started[job.id] = time.monotonic()
        if job.started_at is not None:
            waited = (job.started_at - job.run_at).total_seconds()
            self.record_wait(self._labels(job), max(0.0, waited))

    def after_execute(self, job: Job, outcome: Outcome) -> None:
        started = self._started.pop(job.id, None)
        if not self.active():
            return
        labels = self._labels(job)
        if started is not None:
            self.record_duration(labels, time.monotonic() - started)
        name = outcome_name(outcome)
        if name not in (INTERRUPTED, SNOOZED):  # the attempt did not end; it runs again
            self.record_completed(labels, name)
