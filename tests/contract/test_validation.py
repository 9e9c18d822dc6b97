"""One validation of enqueue options, names and arguments, the same on every
backend: a wrong value is refused at enqueue with offload's own error and
nothing is stored (issue 13, items 11 and 12)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offload import App, InvalidOptionError, JobQuery, PayloadError
from offload.errors import JobNotFoundError

BAD_OPTIONS: list[dict[str, Any]] = [
    {"priority": 2**70},
    {"priority": -(2**31) - 1},
    {"delay": 1e20},
    {"delay": -1.0},
    {"delay": math.inf},
    {"delay": math.nan},
    {"timeout": 0},
    {"timeout": math.inf},
    {"max_attempts": 0},
    {"max_attempts": 10**6},
    {"unique_key": "a\x00b"},
    {"tenant": "t\x00"},
    {"tenant": ""},
    {"queue": "q\nq"},
    {"queue": "\ud800"},
]


def _register(app: App) -> Any:
    if "tests.echo" in app.tasks:
        return app.tasks["tests.echo"]

    @app.task(name="tests.echo")
    def echo(value: Any = None, n: float = 0.0) -> None:
        return None

    return echo


async def _count(app: App) -> int:
    return len(await app.list_jobs_async(JobQuery(limit=500)))


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=lambda o: repr(o)[:40])
async def test_a_bad_option_is_refused_and_nothing_is_stored(
    app: App, options: dict[str, Any]
) -> None:
    echo = _register(app)
    with pytest.raises(InvalidOptionError):
        await echo.options(**options).enqueue_async(1)
    assert await _count(app) == 0


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, [1.0, {"x": math.inf}]])
async def test_a_non_finite_argument_is_refused_naming_it(app: App, value: Any) -> None:
    echo = _register(app)
    with pytest.raises(PayloadError, match="'value'"):
        await echo.enqueue_async(value)
    with pytest.raises(PayloadError, match="'n'"):
        await echo.enqueue_async(None, math.inf)
    assert await _count(app) == 0


async def test_an_argument_json_cannot_hold_is_a_payload_error_naming_it(app: App) -> None:
    echo = _register(app)
    with pytest.raises(PayloadError, match="'value'"):
        await echo.enqueue_async(object())
    assert await _count(app) == 0


async def test_max_attempts_zero_is_not_read_as_the_default(app: App) -> None:
    echo = _register(app)
    with pytest.raises(InvalidOptionError, match="max_attempts"):
        echo.options(max_attempts=0).prepare()


async def test_a_job_id_no_record_can_carry_is_not_found(app: App) -> None:
    with pytest.raises(JobNotFoundError):
        await app.get_job_async("x\x00y")


async def test_a_schedule_id_with_a_slash_is_refused(app: App) -> None:
    echo = _register(app)
    with pytest.raises(InvalidOptionError, match="'/'"):
        await app.schedule_async("a/b", echo, "* * * * *")
    with pytest.raises(InvalidOptionError, match="priority"):
        await app.schedule_async("ok", echo, "* * * * *", priority=2**40)


names = st.text(st.characters(codec="utf-8"), max_size=8) | st.sampled_from(["a\x00", "", "q"])
numbers = (
    st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, 2**31 - 1, 2**31, -(2**31)])
)
arguments = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
options = st.fixed_dictionaries(
    {},
    optional={
        "priority": numbers,
        "delay": numbers,
        "timeout": numbers | st.none(),
        "max_attempts": numbers | st.none(),
        "queue": names,
        "tenant": names,
        "unique_key": names | st.none(),
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(opts=options, value=arguments)
async def test_enqueue_fuzz_refuses_cleanly_or_stores_what_was_asked(
    app: App, opts: dict[str, Any], value: Any
) -> None:
    echo = _register(app)
    before = await _count(app)
    try:
        job = await echo.options(**opts).enqueue_async(value)
    except PayloadError:
        assert await _count(app) == before
        return
    stored = await app.get_job_async(job.id)
    assert stored.tenant == opts.get("tenant", "default")
    assert stored.priority == opts.get("priority", 0)
    assert stored.max_attempts == (opts.get("max_attempts") or 3)
