"""Turning values into bytes and back: a two-method protocol, JSON by default.

Never pickle: a queue is a door into every worker, and pickle would let anyone who
can write to it run code there. pydantic-core's JSON is used because it is fast and
already understands datetimes, UUIDs, decimals and models.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pydantic_core

from offload.errors import SerializationError


@runtime_checkable
class Serializer(Protocol):
    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """UTF-8 JSON. Values it cannot represent raise ``SerializationError``."""

    def dumps(self, value: Any) -> bytes:
        try:
            return pydantic_core.to_json(value)
        except pydantic_core.PydanticSerializationError as exc:
            raise SerializationError(
                f"cannot encode {type(value).__name__} as JSON: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return pydantic_core.from_json(data)
        except ValueError as exc:
            raise SerializationError(f"stored bytes are not valid JSON: {exc}") from exc


JSON = JsonSerializer()
