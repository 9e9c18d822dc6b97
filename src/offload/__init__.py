"""offload: background jobs for Python, from one SQLite file to a cluster."""

from offload.app import App
from offload.errors import (
    BackendError,
    BatchFinishedError,
    ConfigurationError,
    DuplicateTaskError,
    InvalidCronError,
    InvalidOptionError,
    InvalidTimezoneError,
    JobEndedError,
    JobNotFoundError,
    NotFoundError,
    OffloadError,
    PayloadError,
    PayloadTooLargeError,
    ScheduleError,
    SerializationError,
    TaskError,
    TaskFailure,
    TransitionError,
    UnknownTaskError,
    UsageError,
)
from offload.job import (
    Batch,
    ErrorInfo,
    Event,
    Job,
    JobContext,
    JobQuery,
    NewJob,
    Pause,
    Schedule,
)
from offload.lifecycle import EventKind, State
from offload.middleware import Middleware
from offload.retry import RetryPolicy
from offload.serializer import JsonSerializer, Serializer
from offload.settings import Settings
from offload.task import BoundTask, Task

__all__ = [
    "App",
    "BackendError",
    "Batch",
    "BatchFinishedError",
    "BoundTask",
    "ConfigurationError",
    "DuplicateTaskError",
    "ErrorInfo",
    "Event",
    "EventKind",
    "InvalidCronError",
    "InvalidOptionError",
    "InvalidTimezoneError",
    "Job",
    "JobContext",
    "JobEndedError",
    "JobNotFoundError",
    "JobQuery",
    "JsonSerializer",
    "Middleware",
    "NewJob",
    "NotFoundError",
    "OffloadError",
    "Pause",
    "PayloadError",
    "PayloadTooLargeError",
    "RetryPolicy",
    "Schedule",
    "ScheduleError",
    "SerializationError",
    "Serializer",
    "Settings",
    "State",
    "Task",
    "TaskError",
    "TaskFailure",
    "TransitionError",
    "UnknownTaskError",
    "UsageError",
]
