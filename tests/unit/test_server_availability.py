"""The one place a test may skip: a server it needs is missing on a user's
machine. Under ``CI=true`` the same call fails the test instead."""

from __future__ import annotations

import pytest

import tests.servers as servers


def test_a_missing_server_skips_off_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "CI", False)
    with pytest.raises(pytest.skip.Exception, match="no redis-server"):
        servers.unavailable("no redis-server")


def test_a_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "CI", True)
    with pytest.raises(pytest.fail.Exception, match="unavailable under CI: no redis-server"):
        servers.unavailable("no redis-server")
