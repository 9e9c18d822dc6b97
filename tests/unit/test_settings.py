"""OFFLOAD_* environment variables become typed settings; bad values fail clearly."""

from __future__ import annotations

import os

import pytest

from offload import App, Settings
from offload.settings import DEFAULT_BACKEND_URL


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OFFLOAD_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = Settings()
    assert s.backend_url == DEFAULT_BACKEND_URL == "sqlite:///offload.db"
    assert (s.max_payload_bytes, s.concurrency, s.lease_seconds) == (1024 * 1024, 10, 30.0)
    assert s.heartbeat_every == 10.0
    assert s.batch_size == 10


def test_environment_is_read_with_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLOAD_BACKEND_URL", "memory://")
    monkeypatch.setenv("OFFLOAD_MAX_PAYLOAD_BYTES", "2048")
    monkeypatch.setenv("OFFLOAD_POLL_INTERVAL", "0.25")
    monkeypatch.setenv("OFFLOAD_CONCURRENCY", "4")
    monkeypatch.setenv("OFFLOAD_FETCH_BATCH", "16")
    monkeypatch.setenv("OFFLOAD_HEARTBEAT_INTERVAL", "2.5")
    s = Settings()
    assert s.backend_url == "memory://"
    assert s.max_payload_bytes == 2048
    assert isinstance(s.max_payload_bytes, int)
    assert s.poll_interval == 0.25
    assert (s.batch_size, s.heartbeat_every) == (16, 2.5)


def test_lower_case_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("offload_concurrency", "3")
    assert Settings().concurrency == 3


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("OFFLOAD_MAX_PAYLOAD_BYTES", "lots", "max_payload_bytes"),
        ("OFFLOAD_CONCURRENCY", "0", "concurrency"),
        ("OFFLOAD_LEASE_SECONDS", "-1", "lease_seconds"),
        ("OFFLOAD_POLL_INTERVAL", "soon", "poll_interval"),
    ],
)
def test_bad_value_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=field) as info:
        Settings()
    assert value in str(info.value)


def test_app_without_url_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLOAD_BACKEND_URL", "memory://")
    assert App().backend_url == "memory://"


def test_explicit_url_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLOAD_BACKEND_URL", "sqlite:///elsewhere.db")
    assert App("memory://").backend_url == "memory://"


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValueError, match="frozen"):
        s.concurrency = 99  # type: ignore[misc]
