"""``python -m offload`` is the ``offload`` command, for a Python whose scripts
folder is not on PATH."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offload", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_help_lists_the_commands() -> None:
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: python -m offload" in done.stdout
    for command in ("worker", "web", "jobs"):
        assert command in done.stdout


def test_a_usage_error_exits_2_like_the_script() -> None:
    done = _run("no-such-command")
    assert done.returncode == 2
    assert "no-such-command" in done.stderr
