"""The Lua scripts as data: loaded from ``scripts/`` into one function library.

Every script is the shared prelude's helpers plus a body of its own. They are
loaded once, as one Redis function library (``FUNCTION LOAD``), and each call
is an ``FCALL`` of the script's function. A library defines its helpers once,
when it loads; the same text sent as a script (``EVALSHA``) ran the whole
prelude at each call, some forty closures and a table of field names, which
cost about 25 µs of server time a call whatever the body then did: a third of
an enqueue's server time, spent again on every lease, completion and heartbeat.

Each function runs ``begin`` (the call's keys, arguments and server time),
then its body, then stores the event counter after any ``return``. The
library's name carries a hash of its text, so processes of two offload
versions sharing a server each call their own. A server that lost the library
(a restart without persistence, ``FUNCTION FLUSH``, a new cluster node) is
taught it again when a call finds its function missing. Functions need Redis
7 or Valkey 7.2, the versions the backend supports.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any

from redis.exceptions import ResponseError

from offload.backends.redis.codec import FIELDS

NAMES = (
    "enqueue", "lease", "heartbeat", "complete", "fail", "reject", "requeue",
    "cancel", "cancel_confirm", "progress", "redrive", "recover", "purge", "now",
    "pause", "resume", "schedule_upsert", "schedule_delete", "schedule_advance",
    "batch_create", "batch_finish", "snooze", "limit_acquire", "rate_acquire",
    "worker_beat", "worker_list", "worker_remove", "release", "batch_purge", "stats",
    "jobs_get",
)  # fmt: skip


def _script(name: str) -> str:
    return files("offload.backends.redis").joinpath("scripts", f"{name}.lua").read_text("utf-8")


@cache
def prelude() -> str:
    """The text every function starts from: the job fields, then ``_prelude.lua``."""
    fields = ", ".join(f"'{f}'" for f in FIELDS)
    return f"local FIELDS = {{{fields}}}\n" + _script("_prelude")


def _body(name: str) -> str:
    return f"local function main_{name}()\n{_script(name)}\nend\n"


def _register(name: str, library: str) -> str:
    return (
        f"redis.register_function('{library}_{name}', function(keys, args)\n"
        f"  begin(keys, args)\n  local result = main_{name}()\n  flush_eid()\n"
        f"  return result\nend)\n"
    )


@cache
def _code() -> str:
    return prelude() + "\n" + "".join(_body(name) for name in NAMES)


@cache
def library_name() -> str:
    digest = hashlib.sha1(_code().encode(), usedforsecurity=False).hexdigest()
    return f"offload_{digest[:16]}"


@cache
def library() -> str:
    """The ``FUNCTION LOAD`` text: every script's function, registered by name."""
    name = library_name()
    registered = "".join(_register(script, name) for script in NAMES)
    return f"#!lua name={name}\n{_code()}\n{registered}"


def function(name: str) -> str:
    """The name ``FCALL`` calls script ``name`` by."""
    return f"{library_name()}_{name}"


def command(name: str, route_key: str, args: list[Any]) -> list[Any]:
    """The ``FCALL`` of script ``name`` as a raw command, for a hand-packed send."""
    return ["FCALL", function(name), 1, route_key, *args]


def missing(exc: BaseException) -> bool:
    """The server does not know the library (it was restarted, or flushed)."""
    return isinstance(exc, ResponseError) and "function not found" in str(exc).lower()


async def load_all(client: Any) -> None:
    """Teach the server the library, unless it knows it already.

    The server usually does (another process, an earlier open): asking costs
    one round trip, where loading makes it compile the library again. A
    cluster client asks and loads on every primary; the answer counts only if
    each of them has it."""
    if not _known(await client.function_list(library=library_name())):
        await client.function_load(library(), replace=True)


async def run(client: Any, name: str, route_key: str, args: list[Any]) -> Any:
    """FCALL the script's function, loading the library first when the server
    does not know it."""
    try:
        return await client.fcall(function(name), 1, route_key, *args)
    except ResponseError as exc:
        if not missing(exc):
            raise
    await load_all(client)
    return await client.fcall(function(name), 1, route_key, *args)


def load_all_sync(client: Any) -> None:
    """``load_all`` through a blocking client."""
    if not _known(client.function_list(library=library_name())):
        client.function_load(library(), replace=True)


def run_sync(client: Any, name: str, route_key: str, args: list[Any]) -> Any:
    """``run`` through a blocking client."""
    try:
        return client.fcall(function(name), 1, route_key, *args)
    except ResponseError as exc:
        if not missing(exc):
            raise
    load_all_sync(client)
    return client.fcall(function(name), 1, route_key, *args)


def _known(listed: Any) -> bool:
    answers = listed.values() if isinstance(listed, dict) else [listed]
    return bool(answers) and all(answers)
