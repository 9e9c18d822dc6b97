"""The SDK clients of one backend instance, built from a ``Target``, and the
count of Storage transactions they made (what Azure bills)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from offload.backends.azure._url import Target, credential
from offload.backends.azure.tables import Table, error_code

T = TypeVar("T")
MISSING_QUEUE = "QueueNotFound"

TABLES = ("jobs", "ids", "unique", "meta", "control")

# The SDKs' own retries, kept short. Their defaults sleep for up to two minutes
# (Tables) or 15 s, then more (Queues) between tries, so one call made while the
# service was down held an idle worker's wait for work, or a heartbeat, for
# that long after it came back; offload's loops retry failed rounds themselves.
TABLE_RETRY: dict[str, Any] = {"retry_total": 4, "retry_backoff_factor": 0.4,
                               "retry_backoff_max": 2}  # fmt: skip
QUEUE_RETRY: dict[str, Any] = {"retry_total": 3, "initial_backoff": 1, "increment_base": 2,
                               "random_jitter_range": 1}  # fmt: skip


def storage_queue_name(prefix: str, queue: str) -> str:
    """Storage queue names allow only lowercase letters, digits and dashes,
    so an offload queue is named by a digest of its name."""
    digest = hashlib.sha256(queue.encode()).hexdigest()[:20]
    return f"{prefix}-{digest}"


class Clients:
    """Tables and queues of one prefix. ``ops`` counts the requests made, per
    service, so the cost of a job in Storage transactions can be measured."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.ops: Counter[str] = Counter()
        self._credential: Any = None
        self._tables_svc = self._table_service()
        self._queues_svc = self._queue_service()
        self._tables: dict[str, Table] = {}
        self._queues: dict[str, QueueClient] = {}
        self._made: set[str] = set()

    def _table_service(self) -> TableServiceClient:
        if self.target.connection_string is not None:
            return TableServiceClient.from_connection_string(
                self.target.connection_string, **TABLE_RETRY
            )
        self._credential = self._credential or credential()
        assert self.target.table_url is not None
        return TableServiceClient(self.target.table_url, credential=self._credential,
                                  **TABLE_RETRY)  # fmt: skip

    def _queue_service(self) -> QueueServiceClient:
        # Base64 bodies: what the Azure Functions queue trigger expects by default.
        encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
        if self.target.connection_string is not None:
            return QueueServiceClient.from_connection_string(
                self.target.connection_string,
                message_encode_policy=encode,
                message_decode_policy=decode,
                **QUEUE_RETRY,
            )
        self._credential = self._credential or credential()
        assert self.target.queue_url is not None
        return QueueServiceClient(
            self.target.queue_url,
            credential=self._credential,
            message_encode_policy=encode,
            message_decode_policy=decode,
            **QUEUE_RETRY,
        )

    def table(self, name: str) -> Table:
        if name not in self._tables:
            client = self._tables_svc.get_table_client(self.target.prefix + name)
            self._tables[name] = Table(client, lambda: self._create_again(name))
        return self._tables[name]

    async def _create_again(self, name: str) -> None:
        """The service lost the table (see ``tables``): create it once more."""
        self._made.discard(name)
        await self._create_table(name)

    def queue_name(self, queue: str) -> str:
        return storage_queue_name(self.target.prefix, queue)

    def queue(self, queue: str) -> QueueClient:
        if queue not in self._queues:
            # The service client does not hand its encoding policies down.
            client = self._queues_svc.get_queue_client(
                self.queue_name(queue),
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
            self._queues[queue] = client
        return self._queues[queue]

    async def create_tables(self) -> None:
        for name in TABLES:
            await self._create_table(name)

    async def _create_table(self, name: str) -> None:
        if name in self._made:
            return
        try:
            self.ops["table"] += 1
            await self.table(name).client.create_table()
        except ResourceExistsError:
            pass
        self._made.add(name)

    async def create_queue(self, queue: str) -> QueueClient:
        client = self.queue(queue)
        if "q:" + queue not in self._made:
            try:
                self.ops["queue"] += 1
                await client.create_queue()
            except ResourceExistsError:
                pass
            self._made.add("q:" + queue)
        return client

    async def in_queue(self, queue: str, call: Callable[[QueueClient], Awaitable[T]]) -> T:
        """``call`` on the queue's client, the queue created first; a queue the
        service lost under a running backend (``QueueNotFound``: an emulator
        restarted without its recent writes) is created again and the call made
        once more, as the tables are (``tables``)."""
        try:
            return await call(await self.create_queue(queue))
        except HttpResponseError as exc:
            if error_code(exc) != MISSING_QUEUE:
                raise
        self._made.discard("q:" + queue)
        return await call(await self.create_queue(queue))

    async def close(self) -> None:
        for client in self._tables.values():
            await client.close()
        for queue_client in self._queues.values():
            await queue_client.close()
        await self._tables_svc.close()
        await self._queues_svc.close()
        if self._credential is not None:
            await self._credential.close()
