"""The SQL-file loader both SQL backends share: named sections and numbered
migrations, and the mistakes in those files it refuses to load."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from offload.backends import sqlfiles


def _package(root: Path, files: dict[str, str]) -> str:
    """A throwaway importable package holding ``sql/`` files; a fresh name each
    time, since the loader caches per package."""
    name = f"sqlfiles_{uuid.uuid4().hex[:8]}"
    (root / name / "sql" / "migrations").mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    for relative, text in files.items():
        (root / name / "sql" / relative).write_text(text)
    return name


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_named_sections_are_read_by_name(root: Path) -> None:
    text = "-- header\n\n-- name: one\nSELECT 1\n\n-- name: two\n-- why\nSELECT 2;\n"
    package = _package(root, {"queries.sql": text})
    assert sqlfiles.named_queries(package) == {"one": "SELECT 1", "two": "-- why\nSELECT 2;"}


def test_a_name_given_twice_is_refused(root: Path) -> None:
    package = _package(root, {"queries.sql": "-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n"})
    with pytest.raises(RuntimeError, match="names a twice"):
        sqlfiles.named_queries(package)


def test_migrations_come_in_version_order(root: Path) -> None:
    package = _package(root, {
        "migrations/0002_more.sql": "B", "migrations/0001_initial.sql": "A",
        "migrations/README": "not a migration",
    })  # fmt: skip
    assert sqlfiles.migrations(package) == ((1, "initial", "A"), (2, "more", "B"))


def test_a_gap_in_the_migration_numbers_is_refused(root: Path) -> None:
    package = _package(root, {"migrations/0001_a.sql": "A", "migrations/0003_c.sql": "C"})
    with pytest.raises(RuntimeError, match=r"not numbered 1..n: \[1, 3\]"):
        sqlfiles.migrations(package)
