"""Task limits as declared: rates parsed, keys formatted, bad values refused."""

from __future__ import annotations

import pytest

from offload.errors import ConfigurationError
from offload.limits import Rate, parse_limits, parse_rate


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("10/s", Rate(10, 1.0)), ("100/m", Rate(100, 60.0)), ("5/10s", Rate(5, 10.0)),
     ("1 / h", Rate(1, 3600.0)), ((3, 2.5), Rate(3, 2.5))],
)  # fmt: skip
def test_rates_parse(spec: str | tuple[int, float], expected: Rate) -> None:
    assert parse_rate("t", spec) == expected


@pytest.mark.parametrize("spec", ["10", "ten/s", "0/s", "5/0s", "3/w", (0, 1.0)])
def test_bad_rates_name_the_task(spec: str | tuple[int, float]) -> None:
    with pytest.raises(ConfigurationError, match=r"task 'mail\.send'"):
        parse_rate("mail.send", spec)


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        parse_limits("t", 0, None, None)


def test_keys_default_to_the_task_and_format_arguments() -> None:
    assert parse_limits("t", 1, None, None).key_for("t", {"host": "a"}) == "t"
    keyed = parse_limits("t", 1, None, "host:{host}")
    assert keyed.key_for("t", {"host": "a"}) == "host:a"
    assert keyed.key_for("t", {}) == "host:{host}"
