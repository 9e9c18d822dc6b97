"""Backends are chosen by URL scheme and imported lazily."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload import ConfigurationError
from offload.backends import _SCHEMES as SCHEMES
from offload.backends import Backend, create_backend
from offload.backends.memory import MemoryBackend


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown backend URL scheme 'mysql'") as info:
        create_backend("mysql://localhost/jobs")
    for scheme in ("memory://", "sqlite://", "postgresql://", "redis://", "redis+cluster://"):
        assert scheme in str(info.value)


def test_url_without_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="known:"):
        create_backend("offload.db")


def test_memory_resolves_to_independent_stores() -> None:
    a, b = create_backend("memory://"), create_backend("MEMORY://")
    assert isinstance(a, MemoryBackend)
    assert isinstance(b, MemoryBackend)
    assert a.url == "memory://"
    assert a._s is not b._s
    assert a.clone()._s is a._s


def test_sqlite_resolves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    backend = create_backend(url)
    assert isinstance(backend, Backend)
    assert type(backend).__name__ == "SQLiteBackend"
    assert backend.url == url


def test_a_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCHEMES, "fakeq", ("fakeq_driver_not_installed", "X", "fakeq"))
    with pytest.raises(ConfigurationError, match=r"pip install 'offload\[fakeq\]'"):
        create_backend("fakeq://host")
