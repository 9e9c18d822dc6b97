"""Limits a task declares, enforced across every worker by the backend.

``concurrency=N``: at most N jobs of the limit's key run at once, counted in
backend-held slots that expire if a worker dies holding them. ``rate="N/s"``
(``/m``, ``/h``, ``/d``, or ``(N, seconds)``): at most N starts per sliding
window. The key defaults to the task name; ``key="mail:{domain}"`` formats the
job's arguments into it, so one limit can apply per customer or per host.

A job refused by a limit is snoozed (waiting again, the attempt not counted)
until a slot or a start is likely free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from offload.errors import ConfigurationError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([smhd])\s*$")

RateSpec = str | tuple[int, float] | None


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period: float


@dataclass(frozen=True, slots=True)
class TaskLimits:
    concurrency: int | None = None
    rate: Rate | None = None
    key: str | None = None

    @property
    def any(self) -> bool:
        return self.concurrency is not None or self.rate is not None

    def key_for(self, task_name: str, kwargs: dict[str, Any]) -> str:
        if self.key is None:
            return task_name
        try:
            return self.key.format(**kwargs)
        except (KeyError, IndexError, ValueError):
            return self.key  # a template naming a missing argument limits as one key


def parse_limits(
    task_name: str, concurrency: int | None, rate: RateSpec, key: str | None
) -> TaskLimits:
    if concurrency is not None and concurrency < 1:
        raise ConfigurationError(f"task {task_name!r}: concurrency limit must be at least 1")
    return TaskLimits(concurrency, parse_rate(task_name, rate), key)


def parse_rate(task_name: str, rate: RateSpec) -> Rate | None:
    if rate is None:
        return None
    if isinstance(rate, tuple):
        count, period = rate
    else:
        match = _RATE.match(rate)
        if match is None:
            raise ConfigurationError(
                f"task {task_name!r}: rate limit {rate!r} is not like '10/s', '100/m', '5/10s'"
            )
        count = int(match.group(1))
        period = float(match.group(2) or 1) * _UNITS[match.group(3)]
    if count < 1 or period <= 0:
        raise ConfigurationError(
            f"task {task_name!r}: rate limit needs a count >= 1 per period > 0"
        )
    return Rate(int(count), float(period))
