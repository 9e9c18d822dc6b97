"""``sqlite:///relative.db`` or ``sqlite:////absolute.db`` and its options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from offload.errors import ConfigurationError

_SYNCHRONOUS = frozenset({"off", "normal", "full", "extra"})


@dataclass(frozen=True)
class SQLiteOptions:
    """What a URL says; ``path`` is resolved once, so clones made in another
    working directory open the same file."""

    path: str
    synchronous: str = "normal"
    busy_timeout: float = 10.0
    cross_process_poll: float = 0.005


def parse_url(url: str) -> SQLiteOptions:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db``, with optional
    ``?synchronous=full&busy_timeout=30&cross_process_poll=0.01``."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc or not path or path == ":memory:":
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (memory:// for an in-process store)"
        )
    query = dict(parse_qsl(parts.query))
    try:
        options = SQLiteOptions(
            os.path.realpath(path),
            query.pop("synchronous", "normal").lower(),
            float(query.pop("busy_timeout", 10.0)),
            float(query.pop("cross_process_poll", SQLiteOptions.cross_process_poll)),
        )
    except ValueError as exc:
        raise ConfigurationError(f"bad option in SQLite URL {url!r}: {exc}") from None
    if query or options.synchronous not in _SYNCHRONOUS:
        raise ConfigurationError(
            f"bad option in SQLite URL {url!r}: known options are synchronous "
            f"({', '.join(sorted(_SYNCHRONOUS))}), busy_timeout and cross_process_poll (seconds)"
        )
    return options
