"""Job-scoped log fields, JSON lines, and credentials kept out of logs.

While a job runs, the worker binds it to a context variable; ``JobLogFilter``
copies its id, task, queue, tenant and attempt onto every record emitted in that
context, whichever logger emitted it: the worker's own lines and the task's
(``logging.getLogger(__name__)`` in a task needs nothing more). Arguments are
never among the fields: they may hold personal data or secrets.

Usage outside the CLI::

    handler = logging.StreamHandler()
    handler.addFilter(JobLogFilter())
    handler.setFormatter(JsonFormatter())
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from offload.job import Job

LogFormat = Literal["text", "json"]
FIELDS = ("job_id", "task", "queue", "tenant", "attempt")


@dataclass(frozen=True, slots=True)
class JobFields:
    job_id: str
    task: str
    queue: str
    tenant: str
    attempt: int


current_job: contextvars.ContextVar[JobFields | None] = contextvars.ContextVar(
    "offload_current_job", default=None
)


def bind_job(job: Job) -> contextvars.Token[JobFields | None]:
    """Mark the current context as running ``job``; a job's asyncio task has its
    own context, so the binding ends with it (or ``current_job.reset(token)``)."""
    fields = JobFields(job.id, job.task, job.queue, job.tenant, job.attempts)
    return current_job.set(fields)


class JobLogFilter(logging.Filter):
    """Adds ``job_id``, ``task``, ``queue``, ``tenant`` and ``attempt`` to each
    record (``None`` outside a job); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current_job.get()
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, getattr(fields, name) if fields else None)
        return True


# user:password@ in URLs; key=value secrets of query strings and connection strings.
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@"
)
_KEY_SECRETS = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|access_token|api_key|apikey|"
    r"AccountKey|SharedAccessSignature|sig)=)[^&;\s\"']+",
    re.IGNORECASE,
)
REDACTED = "***"


def redact(text: str) -> str:
    """``redis://u:pw@host`` → ``redis://u:***@host``; ``AccountKey=…`` → ``AccountKey=***``.

    Each pattern runs only where its anchor (``@``, ``=``) occurs: most lines
    (an access log line per request) have neither, and the scans were most of
    what logging such a line cost."""
    if "@" in text:
        text = _URL_CREDENTIALS.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)
    if "=" in text:
        text = _KEY_SECRETS.sub(rf"\g<key>{REDACTED}", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record's message with credentials masked, before any handler
    or formatter sees it (so a third-party handler cannot leak them either)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the job fields
    when in a job, and the exception (redacted) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The message, then ``job=… task=… attempt=…`` when in a job."""

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        if getattr(record, "job_id", None) is None:
            return text
        fields = " ".join(f"{name}={getattr(record, name, None)}" for name in FIELDS)
        return f"{text} [{fields}]"


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler


def prepare_handler(handler: logging.Handler) -> logging.Handler:
    """Give a handler the job fields and the credential mask."""
    handler.addFilter(JobLogFilter())
    handler.addFilter(RedactingFilter())
    return handler


def configure(level: str, log_format: LogFormat, text_handler: logging.Handler) -> None:
    """Root logging for the ``worker`` and ``web`` commands: JSON lines on stderr,
    or ``text_handler`` (the CLI's readable one) with job fields appended."""
    if log_format == "json":
        handler = json_handler()
    else:
        handler = text_handler
        handler.setFormatter(TextFormatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [prepare_handler(handler)]
    root.setLevel(level.upper())


__all__ = [
    "JobFields", "JobLogFilter", "JsonFormatter", "RedactingFilter", "TextFormatter",
    "bind_job", "configure", "current_job", "json_handler", "prepare_handler", "redact",
]  # fmt: skip
