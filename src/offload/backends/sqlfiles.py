"""SQL kept as data: the one loader of the SQL backends' ``.sql`` files.

Each SQL backend is a package with a ``sql/`` folder: ``queries.sql``, every
statement under a ``-- name: x`` line, and ``migrations/NNNN_what.sql``, applied
once each in version order. The files are read once per process; what a backend
splices into them (schema names, column lists, state literals) is its own
business, done once when it renders the texts this module hands out.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"(\d{4})_(\w+)\.sql")

MigrationText = tuple[int, str, str]
"""(version, name, text) of one migration file, as found in the package."""


def read(package: str, name: str) -> str:
    """The text of ``sql/<name>`` in ``package``."""
    return (resources.files(package) / "sql" / name).read_text(encoding="utf-8")


@functools.cache
def named_queries(package: str, name: str = "queries.sql") -> dict[str, str]:
    """Every ``-- name: x`` section of ``sql/<name>``, stripped, by name; a name
    given twice is refused, since the second would silently win."""
    parts = _NAME.split(read(package, name))
    names = parts[1::2]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"{package} sql/{name} names {', '.join(duplicates)} twice")
    return {n: body.strip() for n, body in zip(names, parts[2::2], strict=True)}


@functools.cache
def migrations(package: str) -> tuple[MigrationText, ...]:
    """The files of ``sql/migrations`` named ``NNNN_what.sql``, in version order;
    versions must run 1, 2, 3, … without a gap, or a file was lost or misnamed."""
    folder = resources.files(package) / "sql" / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION.fullmatch(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{package} migrations are not numbered 1..n: {versions}")
    return tuple(found)


__all__ = ["MigrationText", "migrations", "named_queries", "read"]
