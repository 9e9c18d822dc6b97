"""azure:// URLs: connection string, prefix, account URL with a token credential."""

from __future__ import annotations

import pytest

from offload.backends.azure._url import ENV, parse
from offload.errors import ConfigurationError

CONN = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;"


def test_bare_url_reads_the_connection_string_from_the_environment() -> None:
    target = parse("azure://", {ENV: CONN})
    assert (target.connection_string, target.prefix) == (CONN, "offload")


def test_prefix_namespaces_queues_and_tables() -> None:
    assert parse("azure://?prefix=Shop1", {ENV: CONN}).prefix == "shop1"


@pytest.mark.parametrize("prefix", ["1abc", "a-b", "x" * 25])
def test_a_prefix_storage_cannot_name_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        parse(f"azure://?prefix={prefix}", {ENV: CONN})


def test_without_connection_string_or_account_the_error_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match=ENV):
        parse("azure://", {})


def test_an_account_host_gives_both_endpoints_and_no_secret() -> None:
    target = parse("azure://acct.queue.core.windows.net?prefix=p", {})
    assert target.connection_string is None
    assert target.queue_url == "https://acct.queue.core.windows.net"
    assert target.table_url == "https://acct.table.core.windows.net"
    assert "acct.table" in target.safe_url


def test_account_url_option() -> None:
    target = parse("azure://?account_url=https://acct.table.core.chinacloudapi.cn", {})
    assert target.queue_url == "https://acct.queue.core.chinacloudapi.cn"


def test_unknown_options_and_hosts_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown"):
        parse("azure://?connection=x", {ENV: CONN})
    with pytest.raises(ConfigurationError, match="account host"):
        parse("azure://example.com", {})


async def test_the_credential_form_builds_clients_without_network() -> None:
    from offload.backends.azure.backend import AzureBackend

    backend = AzureBackend("azure://acct.queue.core.windows.net?prefix=p")
    try:
        assert backend.describe()["prefix"] == "p"
        table = backend._c.table("jobs").client
        assert table.table_name == "pjobs"
        assert table.url.startswith("https://acct.table.core.windows.net")
        assert backend._c._credential is not None
    finally:
        await backend.close()
