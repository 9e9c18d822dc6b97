"""The backend URL: libpq's own URL plus a few options that belong to offload.

``postgresql://user:pass@host:5432/db?schema=offload&migrate=true&pool_max=10``:
the offload options are taken out and everything else (``sslmode``,
``application_name``, ``connect_timeout``…) goes to libpq unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from offload.backends.postgres._sql import check_schema
from offload.errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    conninfo: str
    schema: str = "offload"
    migrate: bool = True
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout: float = 10.0


def parse_url(url: str) -> PostgresOptions:
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"postgresql", "postgres"}:
        raise ConfigurationError(f"not a PostgreSQL URL: {parts.scheme}://...")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in query if key in _OPTIONS}
    theirs = [(key, value) for key, value in query if key not in _OPTIONS]
    return PostgresOptions(
        urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(theirs), "")),
        schema=check_schema(ours.get("schema", "offload")),
        migrate=_flag("migrate", ours.get("migrate", "true")),
        pool_min=_count("pool_min", ours.get("pool_min", "1")),
        pool_max=_count("pool_max", ours.get("pool_max", "10")),
        pool_timeout=_seconds("pool_timeout", ours.get("pool_timeout", "10")),
    )


def _flag(key: str, value: str) -> bool:
    if value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ConfigurationError(f"?{key}= takes true or false, not {value!r}")


def _count(key: str, value: str) -> int:
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise ConfigurationError(f"?{key}= takes a positive integer, not {value!r}")


def _seconds(key: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds > 0:
        return seconds
    raise ConfigurationError(f"?{key}= takes a positive number of seconds, not {value!r}")


_OPTIONS = frozenset({"schema", "migrate", "pool_min", "pool_max", "pool_timeout"})
