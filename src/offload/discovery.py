"""Finding the modules that register tasks, so a worker needs only ``--app``.

Celery's ``autodiscover_tasks`` imports ``<package>.tasks`` for each listed
package; offload walks the whole package instead, since projects nest their
``tasks`` modules (``shop.orders.tasks``). A package that does not exist is a
configuration error; an import error inside a ``tasks`` module is raised as
is, since hiding it would leave a worker silently without tasks.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable

from offload.errors import ConfigurationError


def autodiscover(packages: Iterable[str], module: str = "tasks") -> list[str]:
    """Import every module named ``module`` in these packages; their names."""
    imported: list[str] = []
    for name in packages:
        for found in _modules_named(_package(name), module):
            importlib.import_module(found)
            imported.append(found)
    return imported


def _package(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise ConfigurationError(f"autodiscover: no package {name!r} to import") from exc
        raise


def _modules_named(package: object, module: str) -> list[str]:
    """``package.module`` and every ``….module`` below it, parents first."""
    root = getattr(package, "__name__", "")
    path = getattr(package, "__path__", None)
    if path is None:  # a plain module: only its own sibling ``tasks`` can count
        return []
    names = [f"{root}.{module}"] if _exists(f"{root}.{module}") else []
    for info in pkgutil.walk_packages(path, prefix=f"{root}."):
        if info.name.rsplit(".", 1)[-1] == module and info.name not in names:
            names.append(info.name)
    return names


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


__all__ = ["autodiscover"]
