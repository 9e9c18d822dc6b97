"""A table client that creates its table again when the service lost it.

The backend creates its tables once, when it opens; a storage account whose
tables vanish under a running backend (an emulator restarted without its
recent writes, a table deleted by hand) would otherwise fail every call with
``TableNotFound``, and a read would even take the missing table for a missing
row. Each call that hears ``TableNotFound`` creates the table and is made once
more; the rows it held are gone, which is what the service says, not something
this layer can mend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableEntity
from azure.data.tables.aio import TableClient

T = TypeVar("T")
MISSING_TABLE = "TableNotFound"


def table_missing(exc: BaseException, *, creating: bool = False) -> bool:
    """``TableNotFound``; a ``create_entity`` that is refused with a bare 404
    (the emulator's answer) can mean nothing else."""
    if not isinstance(exc, HttpResponseError):
        return False
    code = error_code(exc)
    if code == MISSING_TABLE:
        return True
    return creating and isinstance(exc, ResourceNotFoundError) and code is None


def error_code(exc: HttpResponseError) -> str | None:
    """The service's error code as a string (tables hand out an enum member)."""
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)
    return None if code is None else str(code)


class Table:
    """The calls of ``TableClient`` the backend makes, each made again once
    after creating the table if the service lost it."""

    def __init__(self, client: TableClient, create: Callable[[], Awaitable[None]]) -> None:
        self.client = client
        self._create = create

    async def _again(self, call: Callable[[], Awaitable[T]], *, creating: bool = False) -> T:
        try:
            return await call()
        except HttpResponseError as exc:
            if not table_missing(exc, creating=creating):
                raise
        await self._create()
        return await call()

    async def get_entity(self, *args: Any, **kwargs: Any) -> TableEntity:
        return await self._again(partial(self.client.get_entity, *args, **kwargs))

    async def create_entity(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        call = partial(self.client.create_entity, *args, **kwargs)
        return await self._again(call, creating=True)

    async def upsert_entity(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return await self._again(partial(self.client.upsert_entity, *args, **kwargs))

    async def update_entity(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return await self._again(partial(self.client.update_entity, *args, **kwargs))

    async def delete_entity(self, *args: Any, **kwargs: Any) -> None:
        await self._again(partial(self.client.delete_entity, *args, **kwargs))

    async def submit_transaction(self, *args: Any, **kwargs: Any) -> list[Mapping[str, Any]]:
        return await self._again(partial(self.client.submit_transaction, *args, **kwargs))

    async def query_entities(self, *args: Any, **kwargs: Any) -> AsyncIterator[TableEntity]:
        """The rows as they come; a table found missing before the first row
        is created and the query made again (a table lost half way through a
        query is created, and the rows already read stand)."""
        read = False
        try:
            async for row in self.client.query_entities(*args, **kwargs):
                read = True
                yield row
            return
        except HttpResponseError as exc:
            if not table_missing(exc):
                raise
        await self._create()
        if not read:
            async for row in self.client.query_entities(*args, **kwargs):
                yield row

    async def close(self) -> None:
        await self.client.close()
