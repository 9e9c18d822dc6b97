"""``offload web``: options become a served web app with the right tokens."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from offload.cli.web import parse_tokens, web


def test_tokens_map_to_tenants_and_star_is_admin() -> None:
    assert parse_tokens(("s1=acme", "s2=*")) == {"s1": "acme", "s2": None}


@pytest.mark.parametrize("bad", ["nosep", "=acme", "token="])
def test_malformed_tokens_are_usage_errors(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_tokens((bad,))


def test_web_serves_the_app_with_its_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: dict[str, Any] = {}

    def fake_run(asgi: Any, host: str, port: int, **options: Any) -> None:
        served.update(app=asgi, host=host, port=port, **options)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    result = CliRunner().invoke(
        web, ["--backend", "memory://", "--port", "8123", "--token", "t=acme"]
    )
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert served["app"].state.offload_auth.tokens == {"t": "acme"}
    assert served["app"].state.offload.backend_url == "memory://"
    assert served["log_config"] is None  # uvicorn logs through offload's handler
