"""What the API writes does not depend on which JSON encoder wrote it."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from offload.web.encoding import dumps


@dataclasses.dataclass
class Point:
    x: int


def python(value: Any) -> Any:
    """What Python's encoder, with the same fallbacks, makes of ``value``."""
    return json.loads(json.dumps(value, default=str))


@pytest.mark.parametrize(
    "value",
    [
        {"jobs": [{"id": "a", "progress": 0.5, "meta": {}, "tags": ["x", "é", "😀"]}]},
        {"when": datetime(2026, 12, 2, 10, 0, 0, 5, tzinfo=UTC), "day": date(2026, 1, 2)},
        {"point": Point(3)},
        {1: "int key", None: "null key"},
    ],
)
def test_answers_read_back_as_pythons_encoder_writes_them(value: Any) -> None:
    assert json.loads(dumps(value)) == python(value)


def test_what_orjson_refuses_is_still_written() -> None:
    big = 2**70
    assert json.loads(dumps({"n": big})) == {"n": big}
    deep: Any = 0
    for _ in range(300):
        deep = [deep]
    assert json.loads(dumps(deep)) == deep
    assert json.loads(dumps({"s": "\ud800"})) == {"s": "\ud800"}


def test_non_finite_floats_become_null() -> None:
    assert json.loads(dumps({"a": float("nan"), "b": [float("inf")]})) == {"a": None, "b": [None]}
    assert json.loads(dumps({"a": float("nan"), "big": 2**70})) == {"a": None, "big": 2**70}


def test_bytes_and_sets_are_written_as_text_and_sorted_lists() -> None:
    assert json.loads(dumps({"b": b"caf\xc3\xa9", "s": {"b", "a"}})) == {
        "b": "café",
        "s": ["a", "b"],
    }
