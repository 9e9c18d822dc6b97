"""Clock skew for one worker process: Debian's ``faketime`` wraps its command."""

from __future__ import annotations

import shutil

from tests.servers import unavailable


def skewed(offset: str) -> list[str]:
    """The command prefix running a process ``offset`` away from the real clock
    (``+10m``, ``-10m``), the clock still ticking; skips (fails under CI) when
    faketime is missing (scripts/install-faketime installs it)."""
    found = shutil.which("faketime")
    if found is None:
        unavailable("faketime is not installed: run scripts/install-faketime")
        raise AssertionError("unreachable")
    return [found, "-f", offset]
