"""The JSON serializer: round trips, datetimes, clear errors, never pickle."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from offload import JsonSerializer, SerializationError, Serializer
from offload.serializer import JSON


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -7, 2.5, "", "héllo ✓", [], [1, "a", None], {"a": {"b": [1, 2]}}],
)
def test_round_trip(value: Any) -> None:
    assert JSON.loads(JSON.dumps(value)) == value


def test_output_is_utf8_json_text() -> None:
    data = JSON.dumps({"to": "ü"})
    assert isinstance(data, bytes)
    assert data.decode("utf-8") == '{"to":"ü"}'


def test_datetimes_become_iso_strings() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert JSON.loads(JSON.dumps({"at": when})) == {"at": "2024-05-06T07:08:09.123456Z"}


def test_uuids_and_decimals_are_encoded() -> None:
    uid = UUID("01890a5d-ac96-774b-bcce-b302099a8057")
    assert JSON.loads(JSON.dumps([uid, Decimal("1.25")])) == [str(uid), "1.25"]


def test_undecodable_bytes_raise_a_clear_error() -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        JSON.loads(b"\x80\x04\x95not json")


def test_truncated_json_raises_serialization_error() -> None:
    with pytest.raises(SerializationError):
        JSON.loads(b'{"a": ')


def test_unencodable_value_raises_a_clear_error() -> None:
    with pytest.raises(SerializationError, match="cannot encode object as JSON"):
        JSON.dumps(object())


def test_pickled_bytes_are_refused_not_unpickled() -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        JSON.loads(pickle.dumps({"x": 1}))


def test_objects_that_only_pickle_could_carry_are_refused() -> None:
    class Custom:
        pass

    with pytest.raises(SerializationError, match="Custom"):
        JSON.dumps(Custom())


def test_default_serializer_meets_the_protocol() -> None:
    assert isinstance(JSON, JsonSerializer)
    assert isinstance(JSON, Serializer)
