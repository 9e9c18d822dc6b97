"""Real servers for the tests: reuse one that answers, else start a throwaway one
when its binary is installed, else skip with the reason (a failure under CI=true).

Each provider returns a backend URL; every call returns a URL isolated from the
others (its own SQLite file, PostgreSQL schema or Redis key prefix), so tests
never see each other's jobs.
"""

from __future__ import annotations

import os
import socket

import pytest

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip on a user's machine; under CI fail: a backend test that did not run
    proves nothing."""
    if not CI:
        pytest.skip(reason)
    pytest.fail(f"required server unavailable under CI: {reason}", pytrace=False)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require(module: str, reason: str = "") -> object:
    """``pytest.importorskip`` that, like ``unavailable``, fails under CI."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        unavailable(reason or f"{module} is not installed (pip install 'offload[dev]')")
        raise
