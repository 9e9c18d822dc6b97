"""When a failed attempt runs again: a pure function of policy, attempt and error.

Keeping it pure (randomness injected) lets tests pin every decision and lets the
executor decide without touching storage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# (attempt that just failed, the error) -> seconds to wait, or None to give up.
DelayFunction = Callable[[int, BaseException], float | None]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``retry_in`` seconds until the next attempt, or ``None``: dead letter."""

    retry_in: float | None

    @property
    def dead(self) -> bool:
        return self.retry_in is None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter by default.

    ``delays`` (a per-attempt list, the last entry reused) or ``delay`` (a callable
    like ``OnTaskFailedDelay``) replace the exponential rule. ``max_attempts`` on the
    job still bounds the total: the policy only says how long to wait.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: bool = True
    delays: Sequence[float] | None = None
    delay: DelayFunction | None = None
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def decide(self, attempt: int, max_attempts: int, error: BaseException) -> RetryDecision:
        if attempt >= max_attempts or not isinstance(error, self.retry_on):
            return RetryDecision(None)
        return RetryDecision(self._wait(attempt, error))

    def _wait(self, attempt: int, error: BaseException) -> float | None:
        if self.delay is not None:
            wait = self.delay(attempt, error)
            return None if wait is None else max(0.0, wait)
        if self.delays is not None:
            if not self.delays:
                return 0.0
            return max(0.0, self.delays[min(attempt, len(self.delays)) - 1])
        ceiling = min(self.cap, self.base * self.factor ** (attempt - 1))
        return ceiling * self.rng() if self.jitter else ceiling


DEFAULT_RETRY = RetryPolicy()
