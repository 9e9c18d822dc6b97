"""The Lua scripts as data: loaded from ``scripts/``, run by SHA.

Each script is the shared prelude followed by its own body, wrapped in a
function so that the prelude's event counter is stored after any ``return``;
Redis caches it by SHA1, and a server that forgot it (a restart,
``SCRIPT FLUSH``) is taught it again on the ``NOSCRIPT`` reply.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError

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
    """The text every script starts with: the job fields, then ``_prelude.lua``."""
    fields = ", ".join(f"'{f}'" for f in FIELDS)
    return f"local FIELDS = {{{fields}}}\n" + _script("_prelude")


@cache
def source(name: str) -> str:
    wrapped = f"local function main()\n{_script(name)}\nend\nlocal result = main()\nflush_eid()\n"
    return f"{prelude()}\n{wrapped}return result\n"


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode(), usedforsecurity=False).hexdigest()


async def load_all(client: Any) -> None:
    """Teach the server every script up front, so the first call is one round trip.

    The server usually knows them already (another process, an earlier open):
    asking costs one round trip, where loading all of them costs one per script
    and makes the server compile each again. On a cluster the answer is true
    only for a script every primary knows."""
    known = await client.script_exists(*(sha(name) for name in NAMES))
    for name, there in zip(NAMES, known, strict=True):
        if not there:
            await client.script_load(source(name))


async def run(client: Any, name: str, route_key: str, args: list[Any]) -> Any:
    """EVALSHA the script, loading it first when the server does not know it."""
    try:
        return await client.evalsha(sha(name), 1, route_key, *args)
    except NoScriptError:
        await client.script_load(source(name))
        return await client.evalsha(sha(name), 1, route_key, *args)
