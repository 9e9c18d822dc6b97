"""``app.autodiscover``: every ``tasks`` module of a package registers its tasks."""

from __future__ import annotations

import pytest

from offload import ConfigurationError


def test_imports_every_tasks_module_of_the_package() -> None:
    from tests.unit.discover_pkg.shop.registry import app

    found = app.autodiscover("tests.unit.discover_pkg.shop")
    assert found == [
        "tests.unit.discover_pkg.shop.tasks", "tests.unit.discover_pkg.shop.orders.tasks",
    ]  # fmt: skip
    names = set(app.tasks)
    assert "tests.unit.discover_pkg.shop.tasks.ping" in names
    assert "tests.unit.discover_pkg.shop.orders.tasks.ship" in names


def test_an_unknown_package_is_a_clear_error() -> None:
    from tests.unit.discover_pkg.shop.registry import app

    with pytest.raises(ConfigurationError, match="no package 'no_such_pkg_xyz'"):
        app.autodiscover("no_such_pkg_xyz")
