"""offload: background jobs for Python, from one SQLite file to a cluster."""

from offload.app import App
from offload.errors import (
    BatchFinishedError,
    ConfigurationError,
    JobNotFoundError,
    NotFoundError,
    OffloadError,
    PayloadError,
    PayloadTooLargeError,
    SerializationError,
    TaskFailure,
    UnknownTaskError,
)
from offload.job import Batch, ErrorInfo, Event, Job, JobContext, NewJob, Pause, Schedule
from offload.lifecycle import EventKind, State
from offload.middleware import Middleware
from offload.retry import RetryPolicy
from offload.serializer import JsonSerializer, Serializer
from offload.settings import Settings
from offload.task import Task

__all__ = [
    "App",
    "Batch",
    "BatchFinishedError",
    "ConfigurationError",
    "ErrorInfo",
    "Event",
    "EventKind",
    "Job",
    "JobContext",
    "JobNotFoundError",
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
    "SerializationError",
    "Serializer",
    "Settings",
    "State",
    "Task",
    "TaskFailure",
    "UnknownTaskError",
]
