"""JSON on the wire: strict both ways, because Python's ``json`` is not.

Python reads and writes ``NaN`` and ``Infinity``, which are not JSON; a body
carrying them is refused as malformed, and a stored value that cannot be written
as JSON is sent as its text rather than failing the response.

A body is also refused when Python could read it but nothing after could use
it: nesting deeper than ``MAX_DEPTH`` (every later step, validation and
serializing, recurses), an integer too long for ``int()`` or a float that
overflows to infinity (``1e400``), and a lone surrogate escape (``"\\ud800"``),
which no store can write as UTF-8.

Answers are written by orjson: a page of 50 jobs is 40 KB of JSON, and
Python's encoder spent more time on it than reading the jobs did. What orjson
refuses and Python writes (integers past 64 bits, nesting past 255 levels, a
lone surrogate in a stored string) is written by Python's encoder instead, so
no answer fails over its encoder.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


class MalformedJSON(ValueError):
    """The bytes are not one strict JSON document."""


def _refuse_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not valid JSON")


MAX_DEPTH = 64


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise MalformedJSON(f"the number {text[:40]} is too large")
    return value


def loads(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSON(f"the body is not valid UTF-8 ({exc.reason})") from None
    _check_depth(text)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise MalformedJSON(str(exc)) from exc
    except (ValueError, RecursionError) as exc:  # int() over its digit limit
        raise MalformedJSON(str(exc)) from None
    _check_text(value)
    return value


def _check_depth(text: str) -> None:
    """Refuse deep nesting before parsing: a linear scan of the brackets outside
    strings, which cannot overflow a stack."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedJSON(f"the body is nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _check_text(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _encodable(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _encodable(key)
                stack.append(child)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJSON("a string holds a lone surrogate, which is not valid UTF-8") from None


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


# Dates, times and dataclasses go through ``_fallback`` as their text, as
# Python's encoder writes them, so an answer does not depend on which encoder
# wrote it; keys that are not strings are written as text, as Python does.
_ORJSON = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; non-finite floats become ``null``."""
    try:
        return orjson.dumps(value, default=_fallback, option=_ORJSON)
    except orjson.JSONEncodeError:
        pass
    try:
        text = json.dumps(value, default=_fallback, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(value), default=_fallback, separators=(",", ":"))
    return text.encode()
