"""Top-level tasks of the sample package."""

from tests.unit.discover_pkg.shop.registry import app


@app.task
def ping() -> str:
    return "pong"
