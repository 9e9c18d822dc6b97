"""From an offload URL to a redis-py client: asyncio, or blocking for the thread store.

``prefix`` (and ``client_name``) are offload's own query parameters; every other
one is handed to redis-py, so its connection options (``socket_timeout``,
``health_check_interval``, TLS settings…) work as documented there.

A single server is reached through a blocking pool: when all
``max_connections`` (default 64) are busy, a command waits up to ``timeout``
seconds (default 5) for one to come back instead of failing at once with "Too
many connections", so a burst of requests queues rather than erroring.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from offload.backends.redis.keys import DEFAULT_PREFIX
from offload.errors import BackendError, ConfigurationError

RETRIES = 3
POOL_SIZE = 64
POOL_TIMEOUT = 5.0
_SCHEMES = {"redis": "redis", "rediss": "rediss", "valkey": "redis", "redis+cluster": "redis"}


@dataclass(frozen=True, slots=True)
class Target:
    """What a URL asks for: the redis-py URL, the key prefix, cluster or not."""

    client_url: str
    prefix: str
    cluster: bool
    client_name: str

    @property
    def safe_url(self) -> str:
        """The URL without credentials, for humans."""
        parts = urlsplit(self.client_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse(url: str) -> Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"not a redis URL: {url!r}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    prefix = query.pop("prefix", DEFAULT_PREFIX)
    name = query.pop("client_name", f"offload:{prefix}")
    rest = urlencode(query)
    client_url = urlunsplit((_SCHEMES[scheme], parts.netloc, parts.path, rest, ""))
    return Target(client_url, prefix, scheme == "redis+cluster", name)


class _Cluster(RedisCluster):
    """Routes ``FCALL`` by its first key, as redis-py routes ``EVALSHA``. Its
    own routing of ``FCALL`` asks a node for the command's keys
    (``COMMAND GETKEYS``) before every call: a second round trip per call,
    and one that its retries do not cover."""

    async def _determine_slot(self, command: str, *args: Any) -> int:
        key = _fcall_key(command, args)
        if key is not None:
            return int(self.keyslot(key))
        return int(await super()._determine_slot(command, *args))


class _BlockingCluster(redis.RedisCluster):
    """``_Cluster``'s blocking twin, for the thread store, for the same reason.
    redis-py's blocking client names the method apart and passes the command
    as its first argument."""

    def determine_slot(self, *args: Any) -> int | None:
        key = _fcall_key(args[0], args[1:])
        if key is not None:
            return int(self.keyslot(key))  # type: ignore[no-untyped-call]
        return super().determine_slot(*args)


def _fcall_key(command: str, args: tuple[Any, ...]) -> Any:
    """The first key of an ``FCALL``/``FCALL_RO`` that has one, else ``None``."""
    if command.upper() in ("FCALL", "FCALL_RO") and len(args) > 2 and int(args[1]) > 0:
        return args[2]
    return None


def connect(target: Target) -> Any:
    """A client for the target; bytes in and out, since payloads are raw bytes.

    A command whose connection broke is sent again on a new connection (a few
    times, backing off): every script tolerates running twice, see
    docs/backends/redis.md, "Connection loss". ``from_url`` would otherwise
    leave the client without any retry.
    """
    options = _options(target, Retry)
    if target.cluster:
        return _Cluster.from_url(target.client_url, **options)
    pool = BlockingConnectionPool.from_url(target.client_url, **options, **_pool_defaults(target))
    return Redis.from_pool(pool)


def connect_sync(target: Target) -> Any:
    """``connect``'s blocking twin, for calls made from a producer's own
    thread (``sync_store``); same options, same retries."""
    options = _options(target, redis.retry.Retry)
    if target.cluster:
        return _BlockingCluster.from_url(target.client_url, **options)
    pool = redis.BlockingConnectionPool.from_url(
        target.client_url, **options, **_pool_defaults(target)
    )
    return redis.Redis.from_pool(pool)


def _options(target: Target, retry: Any) -> dict[str, Any]:
    backoff = ExponentialWithJitterBackoff(base=0.05, cap=1.0)
    return {"decode_responses": False, "client_name": target.client_name,
            "retry": retry(backoff, RETRIES)}  # fmt: skip


def _pool_defaults(target: Target) -> dict[str, Any]:
    query = dict(parse_qsl(urlsplit(target.client_url).query))
    return {k: v for k, v in (("max_connections", POOL_SIZE), ("timeout", POOL_TIMEOUT))
            if k not in query}  # fmt: skip


@contextmanager
def translated() -> Iterator[None]:
    """Surface storage failures as offload's own ``BackendError``."""
    try:
        yield
    except RedisError as exc:
        raise BackendError(f"redis: {exc}") from exc
