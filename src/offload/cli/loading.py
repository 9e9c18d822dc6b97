"""Find the App a command runs with, from a ``module:attribute`` spec.

The current directory goes first on ``sys.path`` because an app module normally
lives in the project being worked on, not in site-packages (the convention of
``uvicorn main:app`` and ``celery -A``). Every failure becomes an ``AppSpecError``
whose message says what to fix, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from offload.app import App


class AppSpecError(ValueError):
    """The spec does not lead to an ``App``; the message names the fix."""


def load_app(spec: str) -> App:
    """The ``App`` named by ``"package.module:attr"`` (``attr`` may be dotted)."""
    module_name, attr = split_spec(spec)
    obj = resolve_attr(import_app_module(module_name), attr, spec)
    if not isinstance(obj, App):
        raise AppSpecError(f"{spec!r} is a {type(obj).__name__}, not an offload App")
    return obj


def split_spec(spec: str) -> tuple[str, str]:
    module_name, sep, attr = spec.strip().partition(":")
    if not sep or not _dotted_name(module_name) or not _dotted_name(attr):
        raise AppSpecError(f"{spec!r} is not MODULE:ATTR (for example 'myproject.jobs:app')")
    return module_name, attr


def _dotted_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def import_app_module(name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise AppSpecError(
                f"no module named {name!r} (searched the current directory {cwd} and sys.path)"
            ) from exc
        raise AppSpecError(f"importing {name!r} failed: {_describe(exc)}") from exc
    except Exception as exc:
        # The module exists but its own code raised: show where, briefly.
        raise AppSpecError(f"importing {name!r} failed: {_describe(exc)}") from exc


def load_module_file(path: Path, name: str) -> ModuleType:
    """Import a file as module ``name``, for code that is not on ``sys.path``."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppSpecError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise AppSpecError(f"importing {path} failed: {_describe(exc)}") from exc
    return module


def resolve_attr(module: ModuleType, attr: str, spec: str) -> object:
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppSpecError(
                f"module {module.__name__!r} has no attribute {attr!r} (from {spec!r})"
            ) from None
    return obj


def _describe(exc: BaseException) -> str:
    # The deepest frame of real code, not of the import machinery.
    where = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    location = f" (at {where[-1].filename}:{where[-1].lineno})" if where else ""
    return "".join(traceback.format_exception_only(exc)).strip() + location
