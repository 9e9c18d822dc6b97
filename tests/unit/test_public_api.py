"""The public surface: ``offload.__all__`` is pinned; every name imports."""

from __future__ import annotations

import importlib
import inspect

import pytest

import offload
from offload import errors

PUBLIC = [
    "App",
    "BackendError",
    "Batch",
    "BatchFinishedError",
    "BoundTask",
    "CheckpointError",
    "ConfigurationError",
    "DependencyError",
    "Depends",
    "DuplicateTaskError",
    "ErrorInfo",
    "Event",
    "EventKind",
    "InvalidCronError",
    "InvalidOptionError",
    "InvalidTimezoneError",
    "Job",
    "JobContext",
    "JobContextOf",
    "JobEndedError",
    "JobNotFoundError",
    "JobQuery",
    "JsonSerializer",
    "LimitError",
    "Middleware",
    "NewJob",
    "NotFoundError",
    "OffloadError",
    "Pause",
    "PayloadError",
    "PayloadTooLargeError",
    "RetryPolicy",
    "Schedule",
    "ScheduleError",
    "SerializationError",
    "Serializer",
    "Settings",
    "State",
    "Step",
    "Task",
    "TaskError",
    "TaskFailure",
    "TransitionError",
    "UnknownTaskError",
    "UsageError",
    "Workflow",
    "chain",
    "chord",
    "dag",
    "group",
    "step",
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


def test_every_error_of_the_tree_is_exported() -> None:
    tree = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, Exception) and not name.startswith("_")
    }
    assert tree <= set(offload.__all__)


def test_errors_raised_where_builtins_were_are_still_those_builtins() -> None:
    """Code that caught RuntimeError / ValueError before these classes existed
    still catches them."""
    assert issubclass(offload.UsageError, RuntimeError)
    assert issubclass(offload.InvalidCronError, ValueError)
    assert issubclass(offload.InvalidTimezoneError, ValueError)
