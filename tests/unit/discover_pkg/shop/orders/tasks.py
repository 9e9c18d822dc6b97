"""Nested tasks of the sample package."""

from tests.unit.discover_pkg.shop.registry import app


@app.task
def ship(order: int) -> int:
    return order
