"""JSON on the wire: strict both ways, because Python's ``json`` is not.

Python reads and writes ``NaN`` and ``Infinity``, which are not JSON; a body
carrying them is refused as malformed, and a stored value that cannot be written
as JSON is sent as its text rather than failing the response.
"""

from __future__ import annotations

import json
from typing import Any


class MalformedJSON(ValueError):
    """The bytes are not one strict JSON document."""


def _refuse_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not valid JSON")


def loads(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJSON(str(exc)) from exc


def _fallback(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; non-finite floats become ``null``."""
    try:
        text = json.dumps(value, default=_fallback, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(value), default=_fallback, separators=(",", ":"))
    return text.encode()
