"""Redis / Valkey storage, single server or cluster: one Lua script per transition,
every key under one hash tag. See docs/backends/redis.md."""

from offload.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
