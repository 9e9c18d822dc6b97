"""Backends chosen by URL scheme, imported lazily so an extra is needed only
when its backend is used."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from offload.backends.base import Backend
from offload.errors import ConfigurationError
from offload.observability.logs import redact

# scheme -> (module, class, extra that provides its dependencies or None)
_SCHEMES: dict[str, tuple[str, str, str | None]] = {
    "memory": ("offload.backends.memory", "MemoryBackend", None),
    "sqlite": ("offload.backends.sqlite", "SQLiteBackend", None),
    "postgresql": ("offload.backends.postgres", "PostgresBackend", "postgres"),
    "postgres": ("offload.backends.postgres", "PostgresBackend", "postgres"),
    "redis": ("offload.backends.redis", "RedisBackend", "redis"),
    "rediss": ("offload.backends.redis", "RedisBackend", "redis"),
    "valkey": ("offload.backends.redis", "RedisBackend", "redis"),
    "redis+cluster": ("offload.backends.redis", "RedisBackend", "redis"),
    "azure": ("offload.backends.azure", "AzureBackend", "azure"),
}


def create_backend(url: str) -> Backend:
    """The backend for ``url``; a missing extra names the install to run."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        known = ", ".join(sorted(f"{s}://" for s in _SCHEMES))
        raise ConfigurationError(
            f"unknown backend URL scheme {scheme!r} in {redact(url)!r}; known: {known}"
        )
    module_name, class_name, extra = _SCHEMES[scheme]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if extra is None or missing == "offload" or missing.startswith("offload."):
            raise
        raise ConfigurationError(
            f"the {scheme}:// backend needs an extra: pip install 'offload[{extra}]' "
            f"(missing module {exc.name!r})"
        ) from exc
    cls: type[Backend] = getattr(module, class_name)
    return cls(url)  # type: ignore[call-arg]


__all__ = ["Backend", "create_backend"]
