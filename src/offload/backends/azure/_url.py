"""``azure://`` URLs: where the storage account is and how to authenticate.

Three spellings, so the same URL works from a laptop against Azurite and from
production with a managed identity:

* ``azure://`` or ``azure://?prefix=NAME``: the connection string comes from
  ``AZURE_STORAGE_CONNECTION_STRING`` (the SDKs' own convention), so no secret
  ever sits in a URL that is logged or shown on the dashboard.
* ``azure://ACCOUNT.queue.core.windows.net?prefix=NAME`` (any of the account's
  ``queue``/``table``/``blob`` hosts): the account's endpoints with a
  ``DefaultAzureCredential`` from ``azure-identity``.
* ``azure://?account_url=https://ACCOUNT.table.core.windows.net``: the same with
  the endpoint spelled out (sovereign clouds, private endpoints).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from offload.errors import ConfigurationError

ENV = "AZURE_STORAGE_CONNECTION_STRING"
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,23}$")
_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.(queue|table|blob)\.(?P<suffix>.+)$")


@dataclass(frozen=True)
class Target:
    """One account and a namespace in it. ``connection_string`` and
    ``queue_url``/``table_url`` are exclusive: the latter use a token credential."""

    prefix: str
    connection_string: str | None = None
    queue_url: str | None = None
    table_url: str | None = None

    @property
    def safe_url(self) -> str:
        where = self.table_url or "connection string from the environment"
        return f"azure:// ({where}, prefix {self.prefix!r})"


def parse(url: str, environ: dict[str, str] | None = None) -> Target:
    """The target of an ``azure://`` URL; bad input names what is wrong."""
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    if parts.scheme.lower() != "azure":
        raise ConfigurationError(f"not an azure:// URL: {url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"prefix", "account_url"}
    if unknown:
        raise ConfigurationError(f"unknown azure:// URL option(s) {sorted(unknown)} in {url!r}")
    prefix = query.get("prefix", "offload").lower()
    if not _PREFIX.match(prefix):
        raise ConfigurationError(
            f"azure:// prefix {prefix!r} must be 1-24 lowercase letters and digits, "
            "starting with a letter (it names Storage queues and tables)"
        )
    if parts.hostname or "account_url" in query:
        return _account_target(parts.hostname, query.get("account_url"), prefix)
    conn = env.get(ENV)
    if not conn:
        raise ConfigurationError(
            f"azure:// without an account needs the connection string in ${ENV}, "
            "or name the account: azure://ACCOUNT.queue.core.windows.net"
        )
    return Target(prefix, connection_string=conn)


def _account_target(host: str | None, account_url: str | None, prefix: str) -> Target:
    if account_url is not None:
        host = urlsplit(account_url).hostname
        scheme = urlsplit(account_url).scheme or "https"
    else:
        scheme = "https"
    match = _HOST.match(host or "")
    if match is None:
        raise ConfigurationError(
            f"azure:// account host {host!r} is not ACCOUNT.queue|table|blob.<suffix>"
        )
    account, suffix = match["account"], match["suffix"]
    return Target(
        prefix,
        queue_url=f"{scheme}://{account}.queue.{suffix}",
        table_url=f"{scheme}://{account}.table.{suffix}",
    )


def credential() -> Any:
    """The token credential of the account-URL form: managed identity in
    production, the developer's ``az login`` locally. Building it does no I/O."""
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()
