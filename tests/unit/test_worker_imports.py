"""What ``offload worker`` loads before its first job: every module imported is
resident memory in every worker process, so libraries a worker does not use
(the terminal renderer, the web stack) must wait until something needs them."""

from __future__ import annotations

import json
import subprocess
import sys

# Loaded only by commands that show tables, by the web server, or at a terminal.
NOT_FOR_A_WORKER = ("rich", "starlette", "jinja2", "uvicorn", "croniter", "opentelemetry")


def test_the_worker_command_imports_no_terminal_or_web_library() -> None:
    code = (
        "import json, sys\n"
        "import offload.cli.worker, offload.worker, offload.observability.server\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    assert "offload" in loaded
    assert loaded.isdisjoint(NOT_FOR_A_WORKER), sorted(loaded & set(NOT_FOR_A_WORKER))
