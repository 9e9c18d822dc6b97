"""One set of limits for enqueue options and names, whatever the entry point.

Python (``task.options``, ``app.schedule``, hand-built ``NewJob``), the CLI and
the HTTP API all end in these checks, so a value is refused the same way, with
the same ``InvalidOptionError``, before any backend sees it. The limits are the
narrowest any backend can store without loss:

- priority: a signed 32-bit integer (PostgreSQL ``integer``; Redis and Azure keep
  it inside a sort key that holds no more);
- delay and timeout: finite seconds, at most ``MAX_SECONDS`` (ten years, so a due
  time computed from any backend's clock cannot overflow a datetime); a delay may
  be 0, a timeout must be above 0 (a job given no time could never succeed);
- max_attempts: 1 to ``MAX_ATTEMPTS`` (0 is refused, not read as "the default");
- queue, tenant, unique key, batch and schedule ids, task names: 1 to 200
  characters (500 for a unique key), valid UTF-8, no control characters (NUL
  ends a C string in PostgreSQL; the others break logs and terminals); ids that
  travel in URL paths also refuse ``/``;
- arguments: only finite numbers (JSON has no ``Infinity``; pydantic would store
  ``null`` and the job would die at run time).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from offload.errors import InvalidOptionError, PayloadError

PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1
MAX_SECONDS = 10 * 365 * 24 * 3600.0
MAX_ATTEMPTS = 1000
MAX_NAME = 200
MAX_KEY = 500
# How deep the finiteness check follows nested arguments; deeper values are
# left to the serializer, which has its own recursion limit.
_MAX_DEPTH = 64
# C0 and C1 control characters and DEL; a regex search runs in C, and every
# enqueue checks its task, queue and tenant names with it.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def name_problem(value: object, *, limit: int = MAX_NAME, slash: bool = True) -> str | None:
    """Why ``value`` cannot be a name, or ``None`` when it can."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not 0 < len(value) <= limit:
        return f"must be 1 to {limit} characters long"
    if _CONTROL.search(value) is not None:
        return "must not contain control characters (NUL, newline, ...)"
    if not slash and "/" in value:
        return "must not contain '/'"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def is_storable_name(value: object, *, limit: int = MAX_NAME) -> bool:
    """Whether a record could carry this name: a read of one that cannot is a
    plain "not found", never a storage error."""
    return name_problem(value, limit=limit) is None


def check_name(what: str, value: object, *, limit: int = MAX_NAME, slash: bool = True) -> str:
    problem = name_problem(value, limit=limit, slash=slash)
    if problem is not None:
        raise InvalidOptionError(f"{what} {_show(value)} {problem}")
    assert isinstance(value, str)
    return value


def check_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"priority must be an integer, not {_show(value)}")
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise InvalidOptionError(
            f"priority must be between {PRIORITY_MIN} and {PRIORITY_MAX}, not {value}"
        )
    return value


def check_seconds(what: str, value: object, *, zero_ok: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOptionError(f"{what} must be a number of seconds, not {_show(value)}")
    if isinstance(value, int) and abs(value) > MAX_SECONDS:
        raise InvalidOptionError(f"{what} must be at most {MAX_SECONDS:.0f} seconds")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise InvalidOptionError(f"{what} must be a finite number of seconds, not {value}")
    if seconds < 0 or (seconds == 0 and not zero_ok):
        low = "0 or more" if zero_ok else "above 0"
        raise InvalidOptionError(f"{what} must be {low} seconds, not {value}")
    if seconds > MAX_SECONDS:
        raise InvalidOptionError(f"{what} must be at most {MAX_SECONDS:.0f} seconds")
    return seconds


def check_attempts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"max_attempts must be an integer, not {_show(value)}")
    if not 1 <= value <= MAX_ATTEMPTS:
        raise InvalidOptionError(f"max_attempts must be between 1 and {MAX_ATTEMPTS}, not {value}")
    return value


def check_timeout(value: object) -> float | None:
    return None if value is None else check_seconds("timeout", value, zero_ok=False)


def check_run_at(value: object) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise InvalidOptionError(f"run_at must be a datetime, not {_show(value)}")
    return value


def check_job_fields(
    *,
    task: object,
    queue: object,
    tenant: object,
    priority: object,
    max_attempts: object,
    timeout: object,
    delay: object = 0.0,
    run_at: object = None,
    unique_key: object = None,
    batch_id: object = None,
) -> None:
    """Every option a job is stored with; raises ``InvalidOptionError``."""
    check_name("task name", task, limit=MAX_KEY)
    check_name("queue", queue)
    check_name("tenant", tenant)
    check_priority(priority)
    check_attempts(max_attempts)
    check_timeout(timeout)
    check_seconds("delay", delay)
    check_run_at(run_at)
    if unique_key is not None:
        check_name("unique_key", unique_key, limit=MAX_KEY)
    if batch_id is not None:
        check_name("batch_id", batch_id, slash=False)


def check_new_job(job: Any) -> None:
    """A ``NewJob`` as the caller built it (by ``task.prepare`` or by hand)."""
    check_job_fields(
        task=job.task, queue=job.queue, tenant=job.tenant, priority=job.priority,
        max_attempts=job.max_attempts, timeout=job.timeout, delay=job.delay,
        run_at=job.run_at, unique_key=job.unique_key, batch_id=job.batch_id,
    )  # fmt: skip


# arguments ---------------------------------------------------------------------------


def check_finite_arguments(
    task: str, positional_names: tuple[str, ...], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    """Refuse ``inf`` and ``nan`` anywhere in the arguments, naming the argument."""
    named = [
        (positional_names[i] if i < len(positional_names) else f"#{i}", value)
        for i, value in enumerate(args)
    ]
    named.extend(kwargs.items())
    for name, value in named:
        where = non_finite_path(value)
        if where is not None:
            path, bad = where
            raise PayloadError(
                f"invalid arguments for {task}: argument {name!r}{path} is {bad}; "
                "only finite numbers can be stored"
            )


def non_finite_path(value: Any, depth: int = 0) -> tuple[str, float] | None:
    """Where in ``value`` a float is infinite or NaN (``("[2].x", inf)``)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else ("", value)
    if depth >= _MAX_DEPTH or isinstance(value, str | bytes | int):
        return None
    for key, item in _children(value):
        found = non_finite_path(item, depth + 1)
        if found is not None:
            return f"[{key!r}]{found[0]}" if isinstance(key, str) else f"[{key}]{found[0]}", found[
                1
            ]
    return None


def _children(value: Any) -> list[tuple[object, Any]]:
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return list(enumerate(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, dict):  # a pydantic model
        return [(name, getattr(value, name, None)) for name in fields]
    return []


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = [
    "MAX_ATTEMPTS",
    "MAX_KEY",
    "MAX_NAME",
    "MAX_SECONDS",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "check_attempts",
    "check_finite_arguments",
    "check_job_fields",
    "check_name",
    "check_new_job",
    "check_priority",
    "check_seconds",
    "check_timeout",
    "is_storable_name",
    "name_problem",
    "non_finite_path",
]
