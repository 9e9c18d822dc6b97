"""Typed settings read from ``OFFLOAD_*`` environment variables.

Every knob has one name, one type and one default here, so the CLI, the worker and
the docs cannot disagree on them.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from offload.errors import ConfigurationError

DEFAULT_BACKEND_URL = "sqlite:///offload.db"


ENV_PREFIX = "offload_"


def environment(fields: Any) -> dict[str, str]:
    """``OFFLOAD_*`` variables (any case) that name a field, as raw strings for
    the model to validate: every field is a scalar, so this is all of what
    pydantic-settings did here, without its 5 MB and 0.2 s in every worker."""
    found = {}
    for name, value in os.environ.items():
        lowered = name.lower()
        if lowered.startswith(ENV_PREFIX) and lowered[len(ENV_PREFIX) :] in fields:
            found[lowered[len(ENV_PREFIX) :]] = value
    return found


class Settings(BaseModel):
    """Keyword arguments win over the environment, which wins over the defaults."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**environment(type(self).model_fields), **values})

    backend_url: str = DEFAULT_BACKEND_URL
    max_payload_bytes: int = Field(1024 * 1024, gt=0)
    # Each schedule is read and computed by every scheduler tick and listing; a
    # tenant that could add without bound could slow everyone's.
    max_schedules_per_tenant: int = Field(10_000, gt=0)
    # worker
    concurrency: int = Field(10, gt=0)
    fetch_batch: int = Field(0, ge=0, description="jobs leased per round trip; 0 = concurrency")
    poll_interval: float = Field(1.0, gt=0)
    lease_seconds: float = Field(30.0, gt=0)
    heartbeat_interval: float = Field(0.0, ge=0, description="0 = a third of lease_seconds")
    recover_interval: float = Field(5.0, gt=0)
    grace_period: float = Field(30.0, ge=0)
    broker_wait: float = Field(300.0, ge=0, description="how long a starting worker waits "
                               "for a backend it cannot reach; 0 = fail at once")  # fmt: skip
    thread_pool_size: int = Field(0, ge=0, description="0 = concurrency")
    cancel_check_interval: float = Field(0.2, gt=0, description="how often running jobs are "
                                         "checked for a cancel request")  # fmt: skip
    # orchestration: every worker runs these loops unless told not to
    scheduler: bool = True
    scheduler_interval: float = Field(
        1.0,
        gt=0,
        description="how far ahead the scheduler "
        "looks each round; a new schedule is seen within it",
    )
    batch_sweep_interval: float = Field(5.0, gt=0)
    # retention: succeeded and cancelled jobs (with their events) are purged after
    # this long; the dead letter stays until retried or purged by hand
    retention_seconds: float = Field(7 * 24 * 3600, gt=0)
    purge_interval: float = Field(600.0, gt=0)
    # HTTP polling protocol (001_): the Retry-After of a job not yet ended, and the
    # most a scheduled job's wait (until it is due) may ask a client to wait
    retry_after: int = Field(1, ge=1, description="seconds, while a job has not ended")
    retry_after_max: int = Field(60, ge=1, description="cap for a scheduled job's wait")

    @property
    def heartbeat_every(self) -> float:
        return self.heartbeat_interval or self.lease_seconds / 3

    @property
    def batch_size(self) -> int:
        return self.fetch_batch or self.concurrency


def load_settings() -> Settings:
    """Settings from the environment; a bad value names the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"OFFLOAD_{'.'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid offload settings: {problems}") from exc
