"""Every error offload raises on purpose derives from ``OffloadError``.

Callers catch the narrowest class that lets them act; the tree::

    OffloadError
    ├── ConfigurationError        bad URL, missing extra, bad settings
    ├── UsageError                a call made where it cannot work (also a RuntimeError)
    ├── ScheduleError             a schedule that can never fire (also a ValueError)
    │   ├── InvalidCronError      a cron rule that does not parse or never fires
    │   └── InvalidTimezoneError  a zone the IANA database does not know
    ├── TaskError
    │   ├── UnknownTaskError      a name nobody registered
    │   └── DuplicateTaskError    two tasks claim one name
    ├── PayloadError              arguments that do not fit the task's signature
    │   ├── PayloadTooLargeError  encoded payload over the configured limit
    │   └── InvalidOptionError    an enqueue option or name out of range (also a ValueError)
    ├── DependencyError           a parent that does not exist, or a cycle (also a ValueError)
    ├── SerializationError        bytes that cannot be decoded
    │   └── CheckpointError       a stored checkpoint that no longer fits its model
    ├── LimitError                a tenant's quota is full (schedules per tenant)
    ├── NotFoundError             no batch or schedule with that id (in that tenant)
    │   └── JobNotFoundError      no job with that id (in that tenant)
    ├── TransitionError           a state change the lifecycle does not allow, or
    │   │                         a lease asked of a job that holds none
    │   ├── JobEndedError         cancelling a job that had already ended
    │   └── BatchFinishedError    appending to a batch whose continuations ran
    └── BackendError              storage could not do what was asked

``TaskFailure`` stands apart: task code raises it to fail a job with a typed error
value (the task's declared ``error`` type), not offload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offload.job import Job


class OffloadError(Exception):
    """Root of offload's own errors."""


class ConfigurationError(OffloadError):
    """The app or a backend was set up in a way that cannot work."""


class UsageError(OffloadError, RuntimeError):
    """A call made where it cannot work: a sync call on the loop it would wait
    for, ``JobContext.save`` outside a worker, ``use_backend`` after first use.
    Also a ``RuntimeError``, which these calls raised before, so old handlers
    keep catching it."""


class ScheduleError(OffloadError, ValueError):
    """A schedule that can never fire. Also a ``ValueError``, which the cron
    errors were before, so old handlers keep catching them."""


class InvalidCronError(ScheduleError):
    """A rule that does not parse, or that never fires."""


class InvalidTimezoneError(ScheduleError):
    """A zone name the IANA database does not know."""


class TaskError(OffloadError):
    """A problem with the task registry."""


class UnknownTaskError(TaskError):
    """No task is registered under the name a job carries."""


class DuplicateTaskError(TaskError):
    """Two different callables were registered under one name."""


class PayloadError(OffloadError):
    """Arguments do not match the task's signature or types."""


class PayloadTooLargeError(PayloadError):
    """The encoded payload is larger than ``max_payload_bytes``."""


class InvalidOptionError(PayloadError, ValueError):
    """An enqueue option or a name no backend can store as given: a priority
    outside a signed 32-bit integer, a delay or timeout that is not finite, a
    ``max_attempts`` below 1, a control character in a queue, tenant or key.
    A ``PayloadError`` because it is refused at the same moment for the same
    reason (nothing is stored); a ``ValueError`` for callers that catch that."""


class DependencyError(OffloadError, ValueError):
    """A job asked to wait for a job that does not exist (in its tenant), for
    itself through a cycle, or with a policy other than "cancel" or "run"."""


class SerializationError(OffloadError):
    """Stored bytes could not be decoded into a value."""


class CheckpointError(SerializationError):
    """A resumed job's stored checkpoint does not fit the task's ``checkpoint``
    model any more (the model changed while the job was interrupted). The job is
    dead-lettered with this error rather than run from a guessed state; fix the
    model (or accept the old shape) and retry it."""


class LimitError(OffloadError):
    """A tenant already holds as many records of a kind as allowed (see
    ``Settings.max_schedules_per_tenant``); delete some or raise the limit."""


class NotFoundError(OffloadError):
    """No record (job, batch, schedule) with the given id is visible."""


class JobNotFoundError(NotFoundError):
    """No job with the given id is visible."""


class TransitionError(OffloadError):
    """The job is not in a state the requested transition starts from."""


class JobEndedError(TransitionError):
    """The job had already ended, so the request changed nothing; ``job`` is
    the job as it ended (a cancel of a job cancelled earlier lands here too)."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


class BatchFinishedError(TransitionError):
    """The batch has ended and fired its continuations; it takes no more jobs."""


class BackendError(OffloadError):
    """The storage failed to carry out an operation."""


class TaskFailure(Exception):
    """Raised by a task to fail with a typed error: ``raise TaskFailure(
    QuotaExceeded(limit=5))``. The value is stored as JSON with the job's error and
    read back typed with ``task.error_of(job)``. ``retry=False`` sends the job to
    the dead letter at once: a known business outcome that another attempt would
    not change."""

    def __init__(self, error: object, *, retry: bool = True, message: str | None = None) -> None:
        super().__init__(message or f"{type(error).__name__}: {error}")
        self.error = error
        self.retry = retry
