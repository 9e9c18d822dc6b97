"""``usage.py`` under pyright too: the same inferred types, the same rejected
calls (its unneeded ``type: ignore`` comments are errors, configured in
pyproject.toml), so the typed surface holds in editors, not only in mypy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.servers import require

require("pyright", "pyright is a dev extra: pip install 'offload[dev]'")

ROOT = Path(__file__).resolve().parents[2]


def test_usage_checks_clean_under_pyright_strict() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "tests/typing/usage.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    problems = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
    ]
    assert report["summary"]["filesAnalyzed"] == 1, done.stdout
    assert problems == []
