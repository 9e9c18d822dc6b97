"""The public surface: ``offload.__all__`` is pinned; every name imports."""

from __future__ import annotations

import importlib

import pytest

import offload

PUBLIC = [
    "App",
    "Batch",
    "BatchFinishedError",
    "ConfigurationError",
    "ErrorInfo",
    "Event",
    "EventKind",
    "Job",
    "JobContext",
    "JobNotFoundError",
    "JsonSerializer",
    "Middleware",
    "NewJob",
    "NotFoundError",
    "OffloadError",
    "Pause",
    "PayloadError",
    "PayloadTooLargeError",
    "RetryPolicy",
    "Schedule",
    "SerializationError",
    "Serializer",
    "Settings",
    "State",
    "Task",
    "TaskFailure",
    "UnknownTaskError",
]


def test_all_is_pinned() -> None:
    assert offload.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_name_imports(name: str) -> None:
    module = importlib.import_module("offload")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from offload import {name}", namespace)
    assert namespace[name] is getattr(offload, name)


def test_errors_share_one_root() -> None:
    errors = [getattr(offload, n) for n in PUBLIC if n.endswith("Error")]
    assert all(issubclass(e, offload.OffloadError) for e in errors)
