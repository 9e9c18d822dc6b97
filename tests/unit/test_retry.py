"""RetryPolicy.decide: a pure function of policy, attempt and error."""

from __future__ import annotations

import pytest

from offload.retry import RetryDecision, RetryPolicy

ERROR = ValueError("boom")


def fixed(value: float) -> RetryPolicy:
    return RetryPolicy(rng=lambda: value)


def test_exponential_with_full_jitter_uses_the_injected_rng() -> None:
    policy = fixed(0.5)
    waits = [policy.decide(n, 10, ERROR).retry_in for n in (1, 2, 3, 4)]
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_exponential_without_jitter_is_the_ceiling() -> None:
    policy = RetryPolicy(base=2.0, factor=3.0, jitter=False, rng=lambda: 0.0)
    assert [policy.decide(n, 10, ERROR).retry_in for n in (1, 2, 3)] == [2.0, 6.0, 18.0]


def test_exponential_is_capped() -> None:
    policy = RetryPolicy(base=1.0, factor=10.0, cap=50.0, jitter=False)
    assert [policy.decide(n, 10, ERROR).retry_in for n in (1, 2, 3, 4)] == [1, 10, 50, 50]


def test_jitter_stays_under_the_cap() -> None:
    policy = RetryPolicy(cap=5.0, rng=lambda: 0.999)
    wait = policy.decide(9, 20, ERROR).retry_in
    assert wait is not None
    assert 0 <= wait < 5.0


def test_delays_list_is_used_per_attempt_and_the_last_one_reused() -> None:
    policy = RetryPolicy(delays=(1.0, 5.0, 30.0))
    waits = [policy.decide(n, 10, ERROR).retry_in for n in (1, 2, 3, 4, 7)]
    assert waits == [1.0, 5.0, 30.0, 30.0, 30.0]


def test_empty_delays_retry_at_once() -> None:
    assert RetryPolicy(delays=()).decide(1, 3, ERROR) == RetryDecision(0.0)


def test_negative_delays_are_clamped_to_zero() -> None:
    assert RetryPolicy(delays=(-4.0,)).decide(1, 3, ERROR).retry_in == 0.0
    assert RetryPolicy(delay=lambda n, e: -1.0).decide(1, 3, ERROR).retry_in == 0.0


def test_callable_delay_sees_attempt_and_error() -> None:
    seen: list[tuple[int, BaseException]] = []

    def on_task_failed_delay(attempt: int, error: BaseException) -> float | None:
        seen.append((attempt, error))
        return attempt * 10.0

    policy = RetryPolicy(delay=on_task_failed_delay)
    assert policy.decide(2, 5, ERROR).retry_in == 20.0
    assert seen == [(2, ERROR)]


def test_callable_returning_none_means_dead() -> None:
    def give_up_on_key_errors(attempt: int, error: BaseException) -> float | None:
        return None if isinstance(error, KeyError) else 1.0

    policy = RetryPolicy(delay=give_up_on_key_errors)
    assert policy.decide(1, 5, KeyError("x")).dead
    assert policy.decide(1, 5, ERROR) == RetryDecision(1.0)


def test_callable_wins_over_delays() -> None:
    policy = RetryPolicy(delays=(99.0,), delay=lambda n, e: 3.0)
    assert policy.decide(1, 5, ERROR).retry_in == 3.0


def test_retry_on_filters_errors() -> None:
    policy = RetryPolicy(retry_on=(ConnectionError, TimeoutError), jitter=False)
    assert policy.decide(1, 5, ConnectionError()).retry_in == 1.0
    assert policy.decide(1, 5, TimeoutError()).retry_in == 1.0
    assert policy.decide(1, 5, ValueError()).dead


@pytest.mark.parametrize(("attempt", "max_attempts"), [(3, 3), (4, 3), (1, 1)])
def test_attempts_used_up_is_dead(attempt: int, max_attempts: int) -> None:
    policy = RetryPolicy(delays=(1.0,), delay=None)
    decision = policy.decide(attempt, max_attempts, ERROR)
    assert decision.dead
    assert decision.retry_in is None


def test_attempts_used_up_is_dead_even_if_the_callable_would_retry() -> None:
    assert RetryPolicy(delay=lambda n, e: 1.0).decide(3, 3, ERROR).dead


def test_decision_dead_flag() -> None:
    assert RetryDecision(None).dead
    assert not RetryDecision(0.0).dead
